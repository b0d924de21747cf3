//! PostgreSQL engine for sluice: connection (with TLS), the run lock, history tables, execution and
//! introspection.

pub mod backfill;
mod column_catalog;
pub mod index_progress;
mod pacing;
pub mod privileges;
pub mod quote;
pub mod schema;
pub mod tls;
mod triggers;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sluice_core::dburl::DbUrl;
use sluice_core::engine::{
    Backfill, Execution, HistoryStore, Introspection, LockAttempt, LockHolder, OnlineAlter,
    OnlineOptions, OnlineReport, ServerError, UnnamedIndex,
};
use sluice_core::error::{Error, Result};
use sluice_core::history::{Event, EventKind, EventRow, HistoryRow, RecordState, Snapshot};
use sluice_core::schema::Schema;
use sluice_core::target::{EngineKind, Target};
use tokio_postgres::{Client, Config};
use tokio_postgres_rustls::MakeRustlsConnect;

/// The advisory lock key of a sluice run ("sluice" in ASCII). Advisory locks are per database, so
/// one key serves every database on a server.
const RUN_LOCK_KEY: i64 = 0x736c_7569_6365;

/// The history layout version; bumped when sluice changes its own tables.
const HISTORY_FORMAT: &str = "2";

pub struct PgEngine {
    url: DbUrl,
    config: Config,
    tls: MakeRustlsConnect,
    work: Client,
    /// The session that holds the run lock: idle between calls and never inside a transaction, so
    /// it cannot hold back `CREATE INDEX CONCURRENTLY` run on the work session.
    lock: Option<Client>,
    target: Target,
    /// The work session's backend, whose index builds `execute_watched` reports.
    work_pid: i32,
}

impl PgEngine {
    /// Connects the work session (TLS as the URL's `sslmode`/`sslrootcert` say) and reads the
    /// server version; the run lock's session opens when the lock is first taken. The engine is
    /// what [`sluice_core::runner`] drives: `runner::up(&mut engine, ...)`.
    pub async fn connect(url: &DbUrl) -> Result<PgEngine> {
        let (mut config, tls) = driver_config(url)?;
        if !url.session().is_empty() {
            // sluice.toml's `[session]`: each setting tried on a session of its own first, so a
            // rejected one is named (exit 2, before any work); then sent at connection start on
            // every session (work, lock, backfill), where it is also what RESET returns to.
            check_session(&open(&config, &tls, url).await?, url).await?;
            config.options(session_options(url.session()));
        }
        let work = open(&config, &tls, url).await?;
        if let Some(user) = config.get_user().filter(|u| !u.is_empty()) {
            privileges::set_role(user);
        }
        let version: String = work
            .query_one("SHOW server_version_num", &[])
            .await
            .map_err(|e| db_err("reading the server version", e))?
            .get(0);
        let num: u32 = version.trim().parse().unwrap_or(0);
        // From PostgreSQL 10 the number is major * 10000 + minor; before, major.minor * 100 + patch.
        let (major, minor) = if num >= 100_000 {
            (num / 10000, num % 10000)
        } else {
            (num / 10000, num / 100 % 100)
        };
        let target = Target::new(EngineKind::Postgres, major, minor);
        if target.at_least(14, 0) {
            // A killed sluice leaves its backend running the statement (an index build goes on
            // for as long as it takes); with this check the server notices the client is gone
            // within a second and cancels it.
            work.batch_execute("SET client_connection_check_interval = '1s'")
                .await
                .map_err(|e| db_err("setting client_connection_check_interval", e))?;
        }
        let work_pid = work
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(|e| db_err("reading the session's backend pid", e))?
            .get(0);
        Ok(PgEngine {
            url: url.clone(),
            config,
            tls,
            work,
            lock: None,
            target,
            work_pid,
        })
    }

    /// The work session, for callers that need direct access (tests, rehearse).
    pub fn client(&self) -> &Client {
        &self.work
    }

    async fn history_exists(&self) -> Result<bool> {
        let row = self
            .work
            .query_one("SELECT to_regclass('sluice.migrations') IS NOT NULL", &[])
            .await
            .map_err(|e| db_err("reading sluice's history", e))?;
        Ok(row.get(0))
    }
}

/// The driver's configuration and TLS connector for `url` (its `sslmode`/`sslrootcert`), with a
/// 10 s connect timeout unless the URL sets one.
fn driver_config(url: &DbUrl) -> Result<(Config, MakeRustlsConnect)> {
    let mut plain = url.expose().clone();
    // The other parameters are kept as the user encoded them: re-encoding them as a form would
    // write a space as `+`, which libpq's URI syntax (and the driver) take literally
    // (`options=-c%20search_path%3Dapp` became `-c+search_path=app`).
    let raw = plain.query().unwrap_or("").to_string();
    let kept: Vec<&str> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .filter(|p| {
            let key = url::form_urlencoded::parse(p.as_bytes())
                .next()
                .map(|(k, _)| k.into_owned())
                .unwrap_or_default();
            key != "sslmode" && key != "sslrootcert"
        })
        .collect();
    plain.set_query((!kept.is_empty()).then(|| kept.join("&")).as_deref());
    let mut config: Config = plain.as_str().parse().map_err(|e: tokio_postgres::Error| {
        Error::usage(
            format!(
                "invalid PostgreSQL URL {}: {}",
                url.redacted(),
                url.scrub(&e.to_string())
            ),
            "see https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS",
        )
    })?;
    let root_cert = url.param("sslrootcert");
    let mode = tls::effective_mode(
        tls::SslMode::parse(url.param("sslmode").as_deref())?,
        root_cert.as_deref(),
    );
    config.ssl_mode(match mode {
        tls::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        tls::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config.application_name("sluice");
    let tls = MakeRustlsConnect::new(tls::client_config(mode, root_cert.as_deref())?);
    Ok((config, tls))
}

async fn open(config: &Config, tls: &MakeRustlsConnect, url: &DbUrl) -> Result<Client> {
    let (client, conn) = config
        .connect(tls.clone())
        .await
        .map_err(|e| connect_error(url, &e))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("postgres connection closed: {e}");
        }
    });
    Ok(client)
}

/// The startup `options` carrying the `[session]` settings: `-c name=value` each, with spaces and
/// backslashes in values escaped by a backslash as the server splits them.
fn session_options(settings: &[sluice_core::session::SessionSetting]) -> String {
    settings
        .iter()
        .map(|s| {
            let mut value = String::new();
            for c in s.value.as_text().chars() {
                if c.is_whitespace() || c == '\\' {
                    value.push('\\');
                }
                value.push(c);
            }
            format!("-c {}={value}", s.key)
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Tries sluice.toml's `[session]` settings on a session: name and value travel as bind
/// parameters of `set_config`, never as SQL text. A setting the server rejects stops the run
/// before any work (exit 2, naming it).
async fn check_session(client: &Client, url: &DbUrl) -> Result<()> {
    for s in url.session() {
        client
            .query_one(
                "SELECT set_config($1, $2, false)",
                &[&s.key, &s.value.as_text()],
            )
            .await
            .map_err(|e| {
                let server = e
                    .as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| url.scrub(&e.to_string()));
                s.rejected(&server)
            })?;
    }
    Ok(())
}

/// A statement's failure as the runner sees it.
fn server_error(e: &tokio_postgres::Error) -> ServerError {
    match e.as_db_error() {
        Some(d) => ServerError {
            code: d.code().code().to_string(),
            message: {
                let mut m = d.message().to_string();
                if let Some(detail) = d.detail() {
                    m.push_str(&format!(" (detail: {detail})"));
                }
                if let Some(hint) = d.hint() {
                    m.push_str(&format!(" (hint: {hint})"));
                }
                m
            },
            position: match d.position() {
                Some(tokio_postgres::error::ErrorPosition::Original(p)) => Some(*p as usize),
                _ => None,
            },
            // The server ended the session (shutdown, terminate, crash): the outcome is unknown.
            connection_lost: e.is_closed()
                || (matches!(&d.code().code()[..2], "08" | "57") && d.code().code() != "57014"),
            // A deadlock (40P01) ends like a lock timeout: the statement rolled back, and the
            // victim is the session that waited longest, which for a short step waiting on a busy
            // table (a staged swap locking a referencing table, then its own) is sluice's: retried.
            lock_timeout: matches!(d.code().code(), "55P03" | "40P01"),
            grant: if d.code().code() == "42501" {
                privileges::grant_for(d.message())
            } else {
                String::new()
            },
        },
        None => ServerError {
            code: String::new(),
            message: e.to_string(),
            position: None,
            connection_lost: true,
            lock_timeout: false,
            grant: String::new(),
        },
    }
}

/// One clear message and fix for each way a connection fails.
fn connect_error(url: &DbUrl, e: &tokio_postgres::Error) -> Error {
    let mut chain = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let text = s.to_string();
        if !chain.contains(&text) {
            chain.push_str(": ");
            chain.push_str(&text);
        }
        src = s.source();
    }
    let chain = url.scrub(&chain);
    let target = format!("{}:{}", url.host(), url.port().unwrap_or(5432));
    let (message, help) = match e.as_db_error().map(|d| d.code().code()) {
        Some("28P01") => (
            format!("password authentication failed for user `{}`", url.username()),
            "check the user and password in the URL (or DATABASE_URL)".to_string(),
        ),
        Some("28000") => (
            url.scrub(&e.as_db_error().map(|d| d.message().to_string()).unwrap_or_default()),
            "the server refused this user/host combination: check the user name and the server's pg_hba.conf".to_string(),
        ),
        Some("3D000") => (
            format!("database `{}` does not exist", url.database()),
            format!("create it (e.g. `createdb -h {} {}`) or fix the database name in the URL", url.host(), url.database()),
        ),
        Some(code) => (chain.clone(), format!("the server refused the connection ({code})")),
        None if chain.contains("Connection refused") => (
            format!("nothing is listening at {target} (connection refused)"),
            "start PostgreSQL or fix the host and port in the URL".to_string(),
        ),
        None if chain.contains("TLS") || chain.contains("tls") || chain.contains("certificate") => (
            chain.clone(),
            tls_help(&chain),
        ),
        None if chain.contains("timed out") || chain.contains("timeout") => (
            format!("no answer from {target} within 10 s"),
            "check the host, the port and the network path (firewall, VPN)".to_string(),
        ),
        None if chain.contains("failed to lookup") || chain.contains("resolve") || chain.contains("Name or service not known") => (
            format!("cannot resolve host `{}`", url.host()),
            "check the host name in the URL".to_string(),
        ),
        None => (chain.clone(), "check that the server is running and the URL is right".to_string()),
    };
    Error::Connect {
        url: url.redacted(),
        message,
        help,
    }
}

/// What to do about a failed TLS handshake: fix the trust (the CA file, the host name) first;
/// weakening verification is never offered.
fn tls_help(chain: &str) -> String {
    if chain.contains("UnknownIssuer") || chain.contains("unknown issuer") {
        "the server certificate is not signed by a CA sluice trusts: give the CA that signed it with \
         sslrootcert=/path/to/ca.pem (ask the server's administrator for it)"
            .into()
    } else if chain.contains("NotValidForName") || chain.contains("not valid for name") {
        "the server certificate does not name the host in the URL: connect with a host name the \
         certificate carries, or have the certificate reissued for this name"
            .into()
    } else if chain.contains("Expired")
        || chain.contains("NotValidYet")
        || chain.contains("expired")
    {
        "the server certificate is outside its validity period: renew it on the server (or check this \
         machine's clock)"
            .into()
    } else {
        "check the server's TLS setup (certificate, TLS 1.2 or later) and the CA given with sslrootcert; \
         for a server without TLS at all, fix the server or the sslmode the URL asks for"
            .into()
    }
}

fn db_err(context: &str, e: tokio_postgres::Error) -> Error {
    if let Some(denied) = privileges::denied(context, &e) {
        return denied;
    }
    let message = match e.as_db_error() {
        Some(d) => format!("{} ({})", d.message(), d.code().code()),
        None => e.to_string(),
    };
    let help = if e.is_closed() || e.as_db_error().is_none() {
        "the connection to the server was lost; run the command again (a killed run resumes where it stopped)".into()
    } else {
        String::new()
    };
    Error::Database {
        context: context.to_string(),
        message,
        help,
    }
}

fn parse_holder(app_name: &str, backend_pid: i32, since: Option<DateTime<Utc>>) -> LockHolder {
    let field = |key: &str| {
        app_name
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    LockHolder {
        host: field("host=").unwrap_or_else(|| "unknown".into()),
        pid: field("pid=").and_then(|p| p.parse().ok()).unwrap_or(0),
        since,
        session: Some(format!("backend pid {backend_pid}")),
    }
}

const HISTORY_DDL: &str = r#"
CREATE SCHEMA IF NOT EXISTS sluice;
CREATE TABLE IF NOT EXISTS sluice.meta (key text PRIMARY KEY, value text NOT NULL);
CREATE TABLE IF NOT EXISTS sluice.migrations (
    version bigint PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    state text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    duration_ms bigint,
    applied_by text NOT NULL,
    sluice_version text NOT NULL,
    app_version text,
    statements_done integer NOT NULL DEFAULT 0,
    statement_hashes jsonb NOT NULL DEFAULT '[]',
    error text,
    failed_statement text
);
CREATE TABLE IF NOT EXISTS sluice.events (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    kind text NOT NULL,
    version bigint,
    name text,
    checksum text,
    actor text NOT NULL,
    app_version text,
    sluice_version text NOT NULL,
    detail text NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS sluice.snapshots (
    id bigserial PRIMARY KEY,
    taken_at timestamptz NOT NULL DEFAULT now(),
    version bigint,
    fingerprint text NOT NULL,
    schema jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS sluice.backfills (
    id text PRIMARY KEY,
    table_name text NOT NULL,
    set_expr text NOT NULL,
    where_expr text,
    upper_key jsonb,
    last_key jsonb,
    rows_done bigint NOT NULL DEFAULT 0,
    batches bigint NOT NULL DEFAULT 0,
    state text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE OR REPLACE FUNCTION sluice.events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sluice.events is append-only';
END
$$;
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_append_only'
                   AND tgrelid = 'sluice.events'::regclass) THEN
        CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON sluice.events
            FOR EACH ROW EXECUTE FUNCTION sluice.events_append_only();
    END IF;
    -- TRUNCATE fires no row trigger: without this one the whole log could be emptied at once.
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'events_no_truncate'
                   AND tgrelid = 'sluice.events'::regclass) THEN
        CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON sluice.events
            FOR EACH STATEMENT EXECUTE FUNCTION sluice.events_append_only();
    END IF;
END
$$;
"#;

fn row_to_history(r: &tokio_postgres::Row) -> Result<HistoryRow> {
    let state: String = r.get("state");
    let hashes: serde_json::Value = r.get("statement_hashes");
    Ok(HistoryRow {
        version: r.get("version"),
        name: r.get("name"),
        checksum: r.get("checksum"),
        state: RecordState::parse(&state).ok_or_else(|| {
            Error::database(
                "reading sluice.migrations",
                format!("unknown state `{state}`"),
            )
        })?,
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        duration_ms: r.get("duration_ms"),
        applied_by: r.get("applied_by"),
        sluice_version: r.get("sluice_version"),
        app_version: r.get("app_version"),
        statements_done: r.get("statements_done"),
        statement_hashes: serde_json::from_value(hashes).unwrap_or_default(),
        error: r.get("error"),
        failed_statement: r.get("failed_statement"),
    })
}

#[async_trait]
impl Execution for PgEngine {
    fn target(&self) -> Target {
        self.target
    }

    fn url(&self) -> String {
        self.url.redacted()
    }

    fn transactional_ddl(&self) -> bool {
        self.target().transactional_ddl()
    }

    fn needs_own_transaction(&self, stmt: &sluice_core::sql::SqlStatement) -> bool {
        self.target().needs_own_transaction(stmt)
    }

    async fn begin(&mut self) -> Result<()> {
        self.work
            .batch_execute("BEGIN")
            .await
            .map_err(|e| db_err("BEGIN", e))
    }

    async fn commit(&mut self) -> Result<()> {
        self.work
            .batch_execute("COMMIT")
            .await
            .map_err(|e| db_err("COMMIT", e))
    }

    async fn rollback(&mut self) -> Result<()> {
        self.work
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| db_err("ROLLBACK", e))
    }

    async fn execute(&mut self, sql: &str) -> std::result::Result<(), ServerError> {
        self.work
            .batch_execute(sql)
            .await
            .map_err(|e| server_error(&e))
    }

    async fn execute_watched(
        &mut self,
        sql: &str,
        progress: Option<&sluice_core::progress::Progress>,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> std::result::Result<(), ServerError> {
        let pid = self.work_pid;
        // Any statement may build an index (CREATE INDEX, ADD PRIMARY KEY, REINDEX): the watch
        // looks once the statement has run for an interval, and reports only what the view shows.
        let run = self.work.batch_execute(sql);
        let watch = index_progress::watch((&self.config, &self.tls, &self.url), pid, progress, say);
        tokio::select! {
            r = run => r.map_err(|e| server_error(&e)),
            never = watch => match never {},
        }
    }

    async fn set_lock_timeout(&mut self, timeout: std::time::Duration) -> Result<()> {
        // Session level, so it holds for every statement and transaction that follows; 0 = none.
        self.work
            .batch_execute(&format!("SET lock_timeout = '{}ms'", timeout.as_millis()))
            .await
            .map_err(|e| db_err("setting lock_timeout", e))
    }

    async fn set_statement_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> std::result::Result<(), ServerError> {
        self.work
            .batch_execute(&format!(
                "SET statement_timeout = '{}ms'",
                timeout.as_millis()
            ))
            .await
            .map_err(|e| server_error(&e))
    }

    async fn describe_blockers(&mut self, table: Option<&str>) -> Result<Vec<String>> {
        let rows = self
            .work
            .query(
                "SELECT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, ''), coalesce(a.state, ''),
                        coalesce(extract(epoch FROM now() - a.xact_start)::bigint, 0), coalesce(a.query, ''), l.mode
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.granted AND a.pid <> pg_backend_pid()
                    AND l.relation = to_regclass($1)
                  ORDER BY a.xact_start NULLS LAST LIMIT 5",
                &[&table.unwrap_or("")],
            )
            .await
            .map_err(|e| db_err("reading who holds the lock", e))?;
        // The query is another session's: its literals may be secrets (`ALTER ROLE ... PASSWORD`),
        // and this text is printed and stored in the history.
        Ok(rows
            .iter()
            .map(|r| {
                let (pid, user, app, state, age, query, mode): (
                    i32,
                    String,
                    String,
                    String,
                    i64,
                    String,
                    String,
                ) = (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                    r.get(6),
                );
                sluice_core::redact::lock_holder(
                    "pid",
                    pid.into(),
                    &user,
                    Some(&app),
                    &state,
                    age,
                    Some(&mode),
                    &query,
                    sluice_core::redact::Dialect::Postgres,
                )
            })
            .collect())
    }

    async fn drop_invalid_index(&mut self, index: &str) -> Result<bool> {
        // `index` is the name as written in the migration (possibly quoted or qualified):
        // to_regclass resolves it the way the server will. An invalid index may still be being
        // built by another backend (a killed run's, which the server keeps running until it
        // notices the client is gone): dropping it then deadlocks with the build (40P01), and the
        // build may yet succeed. So wait for such a build to end, then look again.
        let mut waited = std::time::Instant::now();
        let mut deadlocks = 0u64;
        loop {
            let row = self
                .work
                .query_opt(
                    "SELECT n.nspname, c.relname, i.indisvalid,
                            (SELECT p.pid FROM pg_stat_progress_create_index p
                              WHERE p.index_relid = c.oid AND p.pid <> pg_backend_pid() LIMIT 1)
                       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE i.indexrelid = to_regclass($1)",
                    &[&index],
                )
                .await
                .map_err(|e| db_err("checking for an invalid index", e))?;
            let Some(row) = row else { return Ok(false) };
            if row.get::<_, bool>(2) {
                return Ok(false);
            }
            let name = quote::qualified(&row.get::<_, String>(0), &row.get::<_, String>(1));
            if let Some(pid) = row.get::<_, Option<i32>>(3) {
                if waited.elapsed() >= std::time::Duration::from_secs(10) {
                    tracing::warn!(
                        "waiting for backend {pid}, still building {name} for an earlier attempt"
                    );
                    waited = std::time::Instant::now();
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
            match self
                .work
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                .await
            {
                Ok(()) => return Ok(true),
                // A build that started between the look and the drop: the server cancels one of
                // the two; look again.
                Err(e) if deadlocks < 20 && raced_with_a_build(&e) => {
                    deadlocks += 1;
                    tracing::warn!("dropping the invalid index {name} deadlocked with a build of it; looking again");
                    tokio::time::sleep(std::time::Duration::from_millis(100 * deadlocks)).await;
                }
                Err(e) => return Err(db_err("dropping an invalid index", e)),
            }
        }
    }

    async fn before_unnamed_index(
        &mut self,
        slot: &str,
        table: &str,
        probe: &str,
        sql: &str,
    ) -> Result<UnnamedIndex> {
        // The indexes the table had before the first attempt, recorded before the build is sent:
        // any later one of the same definition was made by an attempt of this step.
        let key = format!("unnamed index {slot} {table} {probe}");
        let recorded: Option<String> = self
            .work
            .query_opt("SELECT value FROM sluice.meta WHERE key = $1", &[&key])
            .await
            .map_err(|e| db_err("reading an index build's record", e))?
            .map(|r| r.get(0));
        let Some(before) = recorded else {
            self.work
                .execute(
                    "INSERT INTO sluice.meta (key, value)
                     SELECT $1, coalesce(string_agg(indexrelid::text, ','), '')
                       FROM pg_index WHERE indrelid = to_regclass($2)",
                    &[&key, &table],
                )
                .await
                .map_err(|e| db_err("recording an index build", e))?;
            sluice_core::crash_point("unnamed-index-recorded");
            return Ok(UnnamedIndex::Build(vec![]));
        };
        let before: Vec<u32> = before.split(',').filter_map(|x| x.parse().ok()).collect();
        let Some(want) = self.index_shape_of(table, probe).await else {
            return Ok(UnnamedIndex::Build(vec![]));
        };
        let mut dropped = Vec::new();
        let mut waited = std::time::Instant::now();
        let mut races = 0u64;
        loop {
            // A killed run's backend still running this statement (perhaps waiting for its first
            // lock, before its index exists), or any build on the table: wait for it to end.
            let busy: bool = self
                .work
                .query_one(
                    "SELECT EXISTS (SELECT FROM pg_stat_activity
                                     WHERE pid <> pg_backend_pid() AND state <> 'idle' AND query = $1)
                         OR EXISTS (SELECT FROM pg_stat_progress_create_index
                                     WHERE relid = to_regclass($2) AND pid <> pg_backend_pid())",
                    &[&sql, &table],
                )
                .await
                .map_err(|e| db_err("looking for an earlier attempt's index build", e))?
                .get(0);
            if busy {
                if waited.elapsed() >= std::time::Duration::from_secs(10) {
                    tracing::warn!("waiting for another session's index build on {table} to end");
                    waited = std::time::Instant::now();
                }
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                continue;
            }
            let rows = self
                .work
                .query(
                    "SELECT i.indexrelid, n.nspname, c.relname, pg_get_indexdef(i.indexrelid), i.indisvalid
                       FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE i.indrelid = to_regclass($1)",
                    &[&table],
                )
                .await
                .map_err(|e| db_err("looking for an earlier attempt's index", e))?;
            let ours: Vec<_> = rows
                .iter()
                .filter(|r| !before.contains(&r.get::<_, u32>(0)))
                .filter(|r| index_shape(&r.get::<_, String>(3)).as_ref() == Some(&want))
                .collect();
            if let Some(r) = ours.iter().find(|r| r.get::<_, bool>(4)) {
                return Ok(UnnamedIndex::Built(quote::qualified(
                    &r.get::<_, String>(1),
                    &r.get::<_, String>(2),
                )));
            }
            let Some(r) = ours.first() else {
                return Ok(UnnamedIndex::Build(dropped));
            };
            let name = quote::qualified(&r.get::<_, String>(1), &r.get::<_, String>(2));
            // A killed backend still finishing with it: look again (the loop waits for builds).
            match self
                .work
                .batch_execute(&format!("DROP INDEX CONCURRENTLY IF EXISTS {name}"))
                .await
            {
                Ok(()) => dropped.push(name),
                Err(e) if races < 20 && raced_with_a_build(&e) => {
                    races += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(100 * races)).await;
                }
                Err(e) => return Err(db_err("dropping an invalid index", e)),
            }
        }
    }

    async fn after_unnamed_index(&mut self, slot: &str, table: &str, probe: &str) -> Result<()> {
        let key = format!("unnamed index {slot} {table} {probe}");
        let recorded: bool = self
            .work
            .query_one(
                "SELECT EXISTS (SELECT FROM sluice.meta WHERE key = $1)",
                &[&key],
            )
            .await
            .map_err(|e| db_err("reading an index build's record", e))?
            .get(0);
        if recorded {
            sluice_core::crash_point("unnamed-index-progress-recorded");
        }
        self.work
            .execute("DELETE FROM sluice.meta WHERE key = $1", &[&key])
            .await
            .map_err(|e| db_err("clearing an index build's record", e))
            .map(|_| ())
    }
}

#[async_trait]
impl HistoryStore for PgEngine {
    async fn try_run_lock(&mut self, me: &LockHolder) -> Result<LockAttempt> {
        if self.lock.is_none() {
            let mut cfg = self.config.clone();
            let name: String = format!("sluice-lock pid={} host={}", me.pid, me.host)
                .chars()
                .take(63)
                .collect();
            cfg.application_name(&name);
            self.lock = Some(open(&cfg, &self.tls, &self.url).await?);
        }
        let lock = self.lock.as_ref().expect("lock session");
        // pg_try_advisory_lock never waits inside the server: a waiting run holds no snapshot that
        // a CREATE INDEX CONCURRENTLY in the running one would have to wait for.
        let got: bool = lock
            .query_one("SELECT pg_try_advisory_lock($1)", &[&RUN_LOCK_KEY])
            .await
            .map_err(|e| db_err("taking the run lock", e))?
            .get(0);
        if got {
            return Ok(LockAttempt::Acquired);
        }
        let holder = lock
            .query_opt(
                "SELECT a.pid, coalesce(a.application_name, ''), a.state_change
                   FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
                  WHERE l.locktype = 'advisory' AND l.granted
                    AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                    AND l.classid::text::bigint = $1 AND l.objid::text::bigint = $2
                    AND l.objsubid = 1
                  LIMIT 1",
                &[&(RUN_LOCK_KEY >> 32), &(RUN_LOCK_KEY & 0xffff_ffff)],
            )
            .await
            .map_err(|e| db_err("reading who holds the run lock", e))?
            .map(|r| parse_holder(&r.get::<_, String>(1), r.get(0), r.get(2)));
        Ok(LockAttempt::Busy(holder))
    }

    async fn release_run_lock(&mut self) -> Result<()> {
        if let Some(lock) = self.lock.take() {
            lock.query_one("SELECT pg_advisory_unlock($1)", &[&RUN_LOCK_KEY])
                .await
                .map_err(|e| db_err("releasing the run lock", e))?;
        }
        Ok(())
    }

    async fn ensure_history(&mut self) -> Result<()> {
        let current: Option<String> = if self
            .work
            .query_one("SELECT to_regclass('sluice.meta') IS NOT NULL", &[])
            .await
            .map_err(|e| db_err("reading sluice's history", e))?
            .get(0)
        {
            self.work
                .query_opt(
                    "SELECT value FROM sluice.meta WHERE key = 'history_format'",
                    &[],
                )
                .await
                .map_err(|e| db_err("reading sluice's history", e))?
                .map(|r| r.get(0))
        } else {
            None
        };
        // Older layouts are upgraded in place (every statement of the DDL is idempotent).
        let known: u32 = HISTORY_FORMAT.parse().expect("numeric format");
        match current.as_deref() {
            Some(HISTORY_FORMAT) => return Ok(()),
            Some(other) if other.parse::<u32>().is_ok_and(|v| v < known) => {}
            Some(other) => {
                return Err(Error::Database {
                    context: "reading sluice's history".into(),
                    message: format!("the history was written by a newer sluice (format {other})"),
                    help: "upgrade sluice to the version that manages this database".into(),
                })
            }
            None => {}
        }
        // A killed run's backend may still be creating them (the server notices a dead client
        // only at its next check): IF NOT EXISTS then collides on the catalog's unique index
        // (23505) until that backend commits or rolls back. Wait and look again.
        let mut attempt = 0u64;
        loop {
            match self.work.batch_execute(HISTORY_DDL).await {
                Ok(()) => break,
                Err(e)
                    if attempt < 20
                        && e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
                {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
                Err(e) => {
                    return Err(db_err(
                        "creating sluice's history tables (schema `sluice`)",
                        e,
                    ))
                }
            }
        }
        self.work
            .execute(
                "INSERT INTO sluice.meta (key, value) VALUES ('history_format', $1)
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&HISTORY_FORMAT],
            )
            .await
            .map_err(|e| db_err("creating sluice's history tables", e))?;
        Ok(())
    }

    async fn history(&mut self) -> Result<Vec<HistoryRow>> {
        if !self.history_exists().await? {
            return Ok(vec![]);
        }
        let rows = self
            .work
            .query("SELECT * FROM sluice.migrations ORDER BY version", &[])
            .await
            .map_err(|e| db_err("reading sluice.migrations", e))?;
        rows.iter().map(row_to_history).collect()
    }

    async fn events(&mut self, limit: i64) -> Result<Vec<EventRow>> {
        if !self.history_exists().await? {
            return Ok(vec![]);
        }
        let rows = self
            .work
            .query(
                "SELECT * FROM (SELECT * FROM sluice.events ORDER BY id DESC LIMIT $1) e ORDER BY id",
                &[&limit],
            )
            .await
            .map_err(|e| db_err("reading sluice.events", e))?;
        rows.iter()
            .map(|r| {
                let kind: String = r.get("kind");
                let kind = match kind.as_str() {
                    "up" => EventKind::Up,
                    "down" => EventKind::Down,
                    "failed" => EventKind::Failed,
                    "repair" => EventKind::Repair,
                    "baseline" => EventKind::Baseline,
                    "import" => EventKind::Import,
                    "expand" => EventKind::Expand,
                    "complete" => EventKind::Complete,
                    "rollback" => EventKind::Rollback,
                    _ => EventKind::DriftCapture,
                };
                Ok(EventRow {
                    id: r.get("id"),
                    at: r.get("at"),
                    event: Event {
                        kind,
                        version: r.get("version"),
                        name: r.get("name"),
                        checksum: r.get("checksum"),
                        actor: r.get("actor"),
                        app_version: r.get("app_version"),
                        sluice_version: r.get("sluice_version"),
                        detail: r.get("detail"),
                    },
                })
            })
            .collect()
    }

    async fn upsert_migration(&mut self, m: &HistoryRow) -> Result<()> {
        // The history is read by anyone with access to the database: no secret goes into it.
        let error = m.error.as_deref().map(sluice_core::redact::secrets);
        let hashes = serde_json::to_value(&m.statement_hashes).expect("hashes serialise");
        self.work
            .execute(
                "INSERT INTO sluice.migrations (version, name, checksum, state, started_at, finished_at, duration_ms,
                    applied_by, sluice_version, app_version, statements_done, statement_hashes, error, failed_statement)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                 ON CONFLICT (version) DO UPDATE SET name = EXCLUDED.name, checksum = EXCLUDED.checksum,
                    state = EXCLUDED.state, started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
                    duration_ms = EXCLUDED.duration_ms, applied_by = EXCLUDED.applied_by,
                    sluice_version = EXCLUDED.sluice_version, app_version = EXCLUDED.app_version,
                    statements_done = EXCLUDED.statements_done, statement_hashes = EXCLUDED.statement_hashes,
                    error = EXCLUDED.error, failed_statement = EXCLUDED.failed_statement",
                &[
                    &m.version,
                    &m.name,
                    &m.checksum,
                    &m.state.as_str(),
                    &m.started_at,
                    &m.finished_at,
                    &m.duration_ms,
                    &m.applied_by,
                    &m.sluice_version,
                    &m.app_version,
                    &m.statements_done,
                    &hashes,
                    &error,
                    &m.failed_statement,
                ],
            )
            .await
            .map_err(|e| db_err("recording progress in sluice.migrations", e))?;
        Ok(())
    }

    async fn delete_migration(&mut self, version: i64) -> Result<()> {
        self.work
            .execute(
                "DELETE FROM sluice.migrations WHERE version = $1",
                &[&version],
            )
            .await
            .map_err(|e| db_err("updating sluice.migrations", e))?;
        Ok(())
    }

    async fn append_event(&mut self, e: &Event) -> Result<()> {
        let detail = sluice_core::redact::secrets(&sluice_core::session::event_detail(
            e,
            self.url.session(),
        ));
        self.work
            .execute(
                "INSERT INTO sluice.events (kind, version, name, checksum, actor, app_version, sluice_version, detail)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &e.kind.as_str(),
                    &e.version,
                    &e.name,
                    &e.checksum,
                    &e.actor,
                    &e.app_version,
                    &e.sluice_version,
                    &detail,
                ],
            )
            .await
            .map_err(|e| db_err("appending to sluice.events", e))?;
        Ok(())
    }

    async fn save_snapshot(&mut self, version: Option<i64>, schema: &Schema) -> Result<()> {
        let json = serde_json::to_value(schema).expect("schema serialises");
        self.work
            .execute(
                "INSERT INTO sluice.snapshots (version, fingerprint, schema) VALUES ($1, $2, $3)",
                &[&version, &schema.fingerprint(), &json],
            )
            .await
            .map_err(|e| db_err("saving the schema snapshot", e))?;
        Ok(())
    }

    async fn latest_snapshot(&mut self) -> Result<Option<Snapshot>> {
        if !self.history_exists().await? {
            return Ok(None);
        }
        let row = self
            .work
            .query_opt(
                "SELECT version, taken_at, schema FROM sluice.snapshots ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await
            .map_err(|e| db_err("reading sluice.snapshots", e))?;
        row.map(|r| {
            let json: serde_json::Value = r.get(2);
            Ok(Snapshot {
                version: r.get(0),
                taken_at: r.get(1),
                schema: serde_json::from_value(json)
                    .map_err(|e| Error::database("reading sluice.snapshots", e.to_string()))?,
            })
        })
        .transpose()
    }
}

#[async_trait]
impl Introspection for PgEngine {
    async fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        // The simple protocol returns every value as text, whatever its type.
        let msgs = self
            .work
            .simple_query(sql)
            .await
            .map_err(|e| db_err("reading another tool's history table", e))?;
        Ok(msgs
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect())
    }

    async fn introspect(&mut self) -> Result<Schema> {
        schema::introspect(&self.work).await
    }

    async fn table_stats(
        &mut self,
    ) -> Result<std::collections::HashMap<String, sluice_core::analysis::TableStats>> {
        // reltuples is the planner's estimate: good enough to tell a hot table from an empty one
        // without scanning anything. Before the first ANALYZE it is -1 (PG14+; 0 before), so a table
        // never analysed is estimated from its size and its columns' widths instead, like the
        // planner does, never as empty. A partitioned table holds no rows itself: its rows and
        // bytes are its leaf partitions' (an ALTER on it rewrites or scans every one of them).
        let rows = self
            .work
            .query(
                "WITH est AS (
                   SELECT c.oid,
                          CASE WHEN c.reltuples > 0 OR (c.reltuples = 0 AND c.relpages > 0) THEN c.reltuples::bigint
                               ELSE (pg_relation_size(c.oid) * 0.9 / (28 + coalesce((
                                     SELECT sum(CASE WHEN a.attlen > 0 THEN a.attlen ELSE 32 END)
                                       FROM pg_attribute a
                                      WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), 0)))::bigint
                          END AS rows,
                          pg_total_relation_size(c.oid) AS bytes
                     FROM pg_class c
                    WHERE c.relkind IN ('r', 'p', 'm'))
                 SELECT n.nspname, c.relname,
                        CASE WHEN c.relkind = 'p' THEN
                             (SELECT coalesce(sum(l.rows), 0)::bigint FROM pg_partition_tree(c.oid) t
                                JOIN est l ON l.oid = t.relid WHERE t.isleaf)
                             ELSE e.rows END,
                        CASE WHEN c.relkind = 'p' THEN
                             (SELECT coalesce(sum(l.bytes), 0)::bigint FROM pg_partition_tree(c.oid) t
                                JOIN est l ON l.oid = t.relid WHERE t.isleaf)
                             ELSE e.bytes END,
                        EXISTS (SELECT 1 FROM pg_partitioned_table pt
                                 WHERE pt.partrelid = c.oid AND pt.partdefid <> 0)
                   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   JOIN est e ON e.oid = c.oid
                  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'sluice')
                    AND n.nspname NOT LIKE 'pg_toast%'",
                &[],
            )
            .await
            .map_err(|e| db_err("reading table sizes", e))?;
        let mut out = std::collections::HashMap::new();
        for r in rows {
            let (schema, name): (String, String) = (r.get(0), r.get(1));
            let stats = sluice_core::analysis::TableStats {
                rows: r.get(2),
                bytes: r.get(3),
                has_default_partition: r.get(4),
            };
            out.insert(format!("{schema}.{name}"), stats);
            // Unqualified names resolve through search_path; public is the common case.
            if schema == "public" || !out.contains_key(&name) {
                out.insert(name, stats);
            }
        }
        Ok(out)
    }

    fn render_diff_sql(&self, from: &Schema, to: &Schema) -> String {
        schema::render_diff_sql(from, to)
    }

    async fn column_type(&mut self, table: &str, column: &str) -> Result<Option<String>> {
        let row = self
            .work
            .query_opt(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute
                  WHERE attrelid = to_regclass($1) AND attname = $2 AND attnum > 0 AND NOT attisdropped",
                &[&table, &column],
            )
            .await
            .map_err(|e| db_err("reading a column's type", e))?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn column_catalog(
        &mut self,
        table: &str,
        column: &str,
    ) -> Result<Option<sluice_core::engine::ColumnCatalog>> {
        column_catalog::read(&self.work, table, column).await
    }

    async fn backfill_trigger_warning(&mut self, table: &str) -> Result<Option<String>> {
        // The very check the backfill makes before its first batch, undone at once.
        let (silenced, warning) = triggers::silence(&self.work, table).await?;
        if silenced {
            triggers::restore(&self.work).await?;
        }
        Ok(warning)
    }

    async fn logical_replication(&mut self) -> Result<sluice_core::engine::LogicalReplication> {
        let mut out = sluice_core::engine::LogicalReplication::default();
        for r in self
            .work
            .query(
                "SELECT schemaname || '.' || tablename, pubname FROM pg_publication_tables ORDER BY 1, 2",
                &[],
            )
            .await
            .map_err(|e| db_err("reading publications", e))?
        {
            out.published.entry(r.get(0)).or_default().push(r.get(1));
        }
        // pg_subscription is readable by everyone except its connection column.
        for r in self
            .work
            .query(
                "SELECT n.nspname || '.' || c.relname, s.subname FROM pg_subscription_rel sr
                   JOIN pg_subscription s ON s.oid = sr.srsubid
                   JOIN pg_class c ON c.oid = sr.srrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
                &[],
            )
            .await
            .map_err(|e| db_err("reading subscriptions", e))?
        {
            out.subscribed.insert(r.get(0), r.get(1));
        }
        // Column lists came with PostgreSQL 15; before, a publication sends every column.
        if self.target.at_least(15, 0) && !out.published.is_empty() {
            for r in self
                .work
                .query(
                    "SELECT n.nspname || '.' || c.relname, p.pubname FROM pg_publication_rel pr
                       JOIN pg_publication p ON p.oid = pr.prpubid
                       JOIN pg_class c ON c.oid = pr.prrelid
                       JOIN pg_namespace n ON n.oid = c.relnamespace
                      WHERE pr.prattrs IS NOT NULL",
                    &[],
                )
                .await
                .map_err(|e| db_err("reading publications' column lists", e))?
            {
                out.column_lists.insert((r.get(0), r.get(1)));
            }
        }
        Ok(out)
    }

    async fn subscriber(
        &mut self,
        url: &DbUrl,
        tables: &[String],
        types: &[String],
    ) -> Result<std::result::Result<sluice_core::engine::SubscriberView, String>> {
        // This publisher: its publications, its logical slots and where it listens.
        let me = self
            .work
            .query_one(
                "SELECT current_database()::text, current_setting('port'),
                        ARRAY(SELECT pubname::text FROM pg_publication ORDER BY 1),
                        ARRAY(SELECT slot_name::text FROM pg_replication_slots
                               WHERE slot_type = 'logical' AND database = current_database())",
                &[],
            )
            .await
            .map_err(|e| db_err("reading this publisher's publications and slots", e))?;
        let (my_db, my_port): (String, String) = (me.get(0), me.get(1));
        let (my_pubs, my_slots): (Vec<String>, Vec<String>) = (me.get(2), me.get(3));
        // A client of its own: no session settings (they are this database's), no run lock.
        let sub = match driver_config(url) {
            Ok((config, tls)) => open(&config, &tls, url).await,
            Err(e) => Err(e),
        };
        let sub = match sub {
            Ok(c) => c,
            // The reason alone: the caller names the subscriber (without its user or password).
            Err(Error::Connect { message, .. }) => return Ok(Err(message)),
            Err(e) => return Ok(Err(url.scrub(&e.to_string()))),
        };
        let read = |what: &str, e: tokio_postgres::Error| {
            format!(
                "reading {what}: {}",
                e.as_db_error()
                    .map(|d| d.message().to_string())
                    .unwrap_or_else(|| url.scrub(&e.to_string()))
            )
        };
        let rows = match sub
            .query(
                "SELECT oid, subname::text, subpublications::text[], subslotname::text
                   FROM pg_subscription
                  WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                  ORDER BY subname",
                &[],
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return Ok(Err(read("its subscriptions", e))),
        };
        let mut view = sluice_core::engine::SubscriberView::default();
        let mut taken: Vec<u32> = Vec::new();
        for r in rows {
            let (oid, name): (u32, String) = (r.get(0), r.get(1));
            let pubs: Vec<String> = r.get(2);
            let slot: Option<String> = r.get(3);
            // Only superusers read the connection string; without it the publications and the
            // slot decide.
            let conn: Option<String> = sub
                .query_opt(
                    "SELECT subconninfo FROM pg_subscription WHERE oid = $1",
                    &[&oid],
                )
                .await
                .ok()
                .flatten()
                .map(|r| r.get(0));
            let elsewhere = conn.and_then(|c| c.parse::<Config>().ok()).and_then(|c| {
                let db = c.get_dbname().unwrap_or_else(|| c.get_user().unwrap_or(""));
                let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
                (db != my_db || port != my_port)
                    .then(|| format!("its connection names database {db} on port {port}"))
            });
            let why = if !pubs.iter().any(|p| my_pubs.contains(p)) {
                Some(format!(
                    "it takes publication(s) {}, which this database does not have",
                    pubs.join(", ")
                ))
            } else if slot.as_ref().is_none_or(|s| !my_slots.contains(s)) {
                Some(format!(
                    "its slot {} is not a logical slot of this database",
                    slot.as_deref().unwrap_or("(none)")
                ))
            } else {
                elsewhere
            };
            match why {
                Some(why) => view.others.push(format!("{name}: {why}")),
                None => {
                    view.subscriptions.push(name);
                    view.publications
                        .extend(pubs.into_iter().filter(|p| my_pubs.contains(p)));
                    taken.push(oid);
                }
            }
        }
        for t in tables {
            let (schema, name) = t.split_once('.').unwrap_or(("public", t));
            let rows = sub
                .query(
                    "SELECT a.attname::text, format_type(a.atttypid, NULL)
                       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                      WHERE n.nspname = $1 AND c.relname = $2
                        AND EXISTS (SELECT 1 FROM pg_subscription_rel sr
                                     WHERE sr.srrelid = c.oid AND sr.srsubid = ANY($3))
                      ORDER BY a.attnum",
                    &[&schema, &name, &taken as &(dyn tokio_postgres::types::ToSql + Sync)],
                )
                .await;
            match rows {
                Ok(rows) if !rows.is_empty() => {
                    view.tables.insert(
                        t.clone(),
                        rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
                    );
                }
                Ok(_) => {}
                Err(e) => return Ok(Err(read(&format!("table {t}"), e))),
            }
        }
        for ty in types {
            // to_regtype: a name the subscriber does not know is NULL, not an error.
            let spelled = sub
                .query_one("SELECT format_type(to_regtype($1), NULL)", &[ty])
                .await
                .map_err(|e| read("a type name", e));
            match spelled {
                Ok(r) => {
                    view.types.insert(ty.clone(), r.get(0));
                }
                Err(why) => return Ok(Err(why)),
            }
        }
        Ok(Ok(view))
    }

    async fn publisher_columns(
        &mut self,
        subscription: &str,
        table: &str,
    ) -> Result<std::result::Result<Vec<String>, String>> {
        let conninfo: Option<String> = match self
            .work
            .query_opt(
                "SELECT subconninfo FROM pg_subscription WHERE subname = $1",
                &[&subscription],
            )
            .await
        {
            Ok(row) => row.map(|r| r.get(0)),
            // Column privileges: only superusers read the connection string.
            Err(e) => {
                return Ok(Err(format!(
                    "the subscription's connection cannot be read by this user ({})",
                    e.as_db_error()
                        .map(|d| d.message().to_string())
                        .unwrap_or_default()
                )))
            }
        };
        let Some(conninfo) = conninfo else {
            return Ok(Err(format!("no subscription {subscription}")));
        };
        let config: tokio_postgres::Config = match conninfo.parse() {
            Ok(c) => c,
            Err(_) => {
                return Ok(Err(
                    "the subscription's connection string does not parse".into()
                ))
            }
        };
        let (client, conn) = match config.connect(tokio_postgres::NoTls).await {
            Ok(c) => c,
            // The message may name the host; the connection string (a password) is never shown.
            Err(e) => {
                return Ok(Err(format!(
                    "cannot connect to the publisher: {}",
                    sluice_core::redact::secrets(&e.to_string())
                )))
            }
        };
        tokio::spawn(conn);
        let (schema, name) = table.split_once('.').unwrap_or(("public", table));
        let rows = client
            .query(
                "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
                &[&schema, &name],
            )
            .await;
        Ok(match rows {
            Ok(rows) => Ok(rows.iter().map(|r| r.get(0)).collect()),
            Err(e) => Err(format!("reading the publisher's table: {e}")),
        })
    }

    async fn session_time_zone(&mut self) -> Result<Option<String>> {
        let row = self
            .work
            .query_one("SHOW timezone", &[])
            .await
            .map_err(|e| db_err("reading the session time zone", e))?;
        Ok(Some(row.get(0)))
    }

    async fn rows_below(&mut self, table: &str, limit: u64) -> Result<Option<u64>> {
        if limit == 0 {
            return Ok(None);
        }
        // Resolved the way the server resolves the statement's name, then quoted by us.
        let Some(row) = self
            .work
            .query_opt(
                "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.oid = to_regclass($1)",
                &[&table],
            )
            .await
            .map_err(|e| db_err("resolving a table name", e))?
        else {
            return Ok(None);
        };
        let (schema, name): (String, String) = (row.get(0), row.get(1));
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM {}.{} LIMIT {limit}) s",
            quote::ident(&schema),
            quote::ident(&name)
        );
        let n: i64 = self
            .work
            .query_one(&sql, &[])
            .await
            .map_err(|e| db_err("counting a table's rows", e))?
            .get(0);
        Ok(((n as u64) < limit).then_some(n as u64))
    }

    async fn check_privileges(&mut self, statements: &[String], _online: bool) -> Result<()> {
        privileges::check(&self.work, statements).await
    }
}

#[async_trait]
impl Backfill for PgEngine {
    async fn backfill(
        &mut self,
        spec: &sluice_core::engine::BackfillSpec,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<sluice_core::engine::BackfillReport> {
        let (silenced, warning) = match spec.stands_for_ddl {
            true => triggers::silence(&self.work, &spec.table).await?,
            false => (false, None),
        };
        if let Some(w) = warning {
            say(&w);
        }
        let done = backfill::run(self, spec, say).await;
        if silenced {
            let reset = triggers::restore(&self.work).await;
            // The backfill's own error first; a reset that fails after a success is one too.
            if done.is_ok() {
                reset?;
            }
        }
        done
    }
}

#[async_trait]
impl OnlineAlter for PgEngine {
    /// PostgreSQL has no shadow-table path: `up` stages its ALTERs instead.
    async fn alter_online(
        &mut self,
        _sql: &str,
        _opts: &OnlineOptions,
        _say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<Option<OnlineReport>> {
        Ok(None)
    }

    async fn explain_online(
        &mut self,
        _sql: &str,
        _as_written_below_rows: u64,
    ) -> Result<Option<Vec<String>>> {
        Ok(None)
    }

    /// The plan's own model (pg_locks-judged) decides PostgreSQL's as-written impacts.
    async fn as_written_impact(
        &mut self,
        _sql: &str,
    ) -> Result<Option<(String, sluice_core::plan::Impact)>> {
        Ok(None)
    }
}

/// Creates the URL's database when it does not exist (`sluice up --create-database`), connecting to
/// the server's `postgres` maintenance database to do it.
pub async fn create_database_if_missing(url: &DbUrl) -> Result<()> {
    match PgEngine::connect(url).await {
        Ok(_) => return Ok(()),
        Err(Error::Connect { ref message, .. }) if message.contains("does not exist") => {}
        Err(e) => return Err(e),
    }
    let admin = PgEngine::connect(&url.with_database("postgres")).await?;
    let sql = format!("CREATE DATABASE {}", quote::ident(&url.database()));
    match admin.work.batch_execute(&sql).await {
        // Another run may have created it in between.
        Err(e) if e.as_db_error().is_some_and(|d| d.code().code() == "42P04") => Ok(()),
        other => other.map_err(|e| db_err(&format!("creating database `{}`", url.database()), e)),
    }?;
    tracing::info!("created database {}", url.database());
    Ok(())
}

/// What identifies an index apart from its name and table: unique or not, and everything
/// `pg_get_indexdef` prints after the table (method, keys, INCLUDE, WITH, WHERE).
fn index_shape(def: &str) -> Option<(bool, String)> {
    def.split_once(" USING ")
        .map(|(head, rest)| (head.starts_with("CREATE UNIQUE "), rest.to_string()))
}

impl PgEngine {
    /// The shape the index `probe` creates will have, learnt by creating it on an empty copy of
    /// `table` in a transaction that is rolled back; None when that fails (no TEMP privilege).
    async fn index_shape_of(&mut self, table: &str, probe: &str) -> Option<(bool, String)> {
        let tx = self.work.transaction().await.ok()?;
        let learnt = async {
            tx.batch_execute(&format!(
                "SET LOCAL lock_timeout = '1s'; CREATE TEMP TABLE sluice_probe (LIKE {table}) ON COMMIT DROP; {probe}"
            ))
            .await?;
            tx.query_one(
                "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'pg_temp.sluice_probe'::regclass",
                &[],
            )
            .await
            .map(|r| r.get::<_, String>(0))
        }
        .await;
        let _ = tx.rollback().await;
        index_shape(&learnt.ok()?)
    }
}

/// A drop of an invalid index that met a killed run's backend still finishing with it: a
/// deadlock with its build (40P01), or its catalog update landing on the same row ("tuple
/// concurrently updated", XX000). Looking again a moment later succeeds.
fn raced_with_a_build(e: &tokio_postgres::Error) -> bool {
    let Some(d) = e.as_db_error() else {
        return false;
    };
    *d.code() == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
        || (d.code().code() == "XX000" && d.message().contains("tuple concurrently updated"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_options_escape_values() {
        use sluice_core::session::{SessionSetting, SessionValue};
        let s = |k: &str, v| SessionSetting {
            key: k.into(),
            value: v,
        };
        assert_eq!(
            super::session_options(&[
                s("search_path", SessionValue::Text("app, \"my schema\"".into())),
                s("statement_timeout", SessionValue::Int(0)),
                s("jit", SessionValue::Bool(false)),
                s("app.note", SessionValue::Text("a\\b -c x=y".into())),
            ]),
            "-c search_path=app,\\ \"my\\ schema\" -c statement_timeout=0 -c jit=off -c app.note=a\\\\b\\ -c\\ x=y"
        );
    }

    /// Parameters other than sslmode/sslrootcert reach the driver as the user encoded them: a
    /// `%20` stays a space (re-encoding wrote `+`, which the server took literally).
    #[test]
    fn url_parameters_keep_their_encoding() {
        for (q, options) in [
            ("options=-c%20search_path%3Dfoo", Some("-c search_path=foo")),
            (
                "sslmode=disable&options=-c%20search_path%3Dfoo&sslrootcert=x",
                Some("-c search_path=foo"),
            ),
            ("options=-c%20a%3Db%20-c%20c%3Dd", Some("-c a=b -c c=d")),
            ("sslmode=disable", None),
        ] {
            let url = DbUrl::parse(&format!("postgres://u@127.0.0.1:5432/db?{q}")).unwrap();
            let (config, _) = driver_config(&url).unwrap();
            assert_eq!(config.get_options(), options, "{q}");
            assert_eq!(config.get_dbname(), Some("db"), "{q}");
        }
    }

    #[test]
    fn holder_from_application_name() {
        let h = parse_holder("sluice-lock pid=4242 host=deploy-1", 77, None);
        assert_eq!((h.pid, h.host.as_str()), (4242, "deploy-1"));
        assert_eq!(h.session.as_deref(), Some("backend pid 77"));
        assert_eq!(parse_holder("psql", 1, None).host, "unknown");
    }

    #[test]
    fn lock_key_splits_into_pg_locks_columns() {
        assert_eq!(RUN_LOCK_KEY >> 32, 0x736c);
        assert_eq!(RUN_LOCK_KEY & 0xffff_ffff, 0x7569_6365);
    }
}
