//! The embedded store: one SQLite file (WAL) implementing every store port.
//!
//! rusqlite is blocking, so the connection lives on a dedicated thread and async callers send it
//! closures over a bounded channel (back-pressure instead of an unbounded pile of blocked
//! threads). One connection serializes all operations, which also makes every read-check-write
//! below atomic within the process; writes still use IMMEDIATE transactions so a second process
//! on the same file (a CLI next to `netmon up`) cannot interleave with them.
//!
//! Crash safety: every port operation is one SQLite transaction, so after a crash it is either
//! fully there or not at all. With WAL and `synchronous=NORMAL` an application crash loses
//! nothing committed; a power loss may lose the last few commits but never corrupts the file.

mod api_ports;
mod history;
mod ports;
mod schema;

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{DateTime, Utc};
use netmon_core::ports::{Expect, StoreError};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};

pub use history::{Retention, RolledUp, SERIES_PER_BATCH, SETTLE};
pub use schema::SCHEMA_VERSION;

use crate::error::{Db, EmbeddedError};

/// Queued operations before callers wait: enough to absorb a burst, small enough to bound memory.
const QUEUE: usize = 256;
/// How long a statement waits for another process's write lock before reporting `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Legacy results deleted per transaction when pruning, so other writers are not blocked for long.
pub(crate) const PRUNE_CHUNK: i64 = 5_000;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

enum Msg {
    Run(Job),
    Close(oneshot::Sender<()>),
}

/// SQLite-backed implementation of `TargetStore`, `ChannelStore`, `StateStore`, `Outbox`,
/// `Idempotency`, `HistoryStore`, `HeartbeatStore`, `ApiKeyStore`, `MaintenanceStore` and
/// `ReplyStore`. Cheap to clone; clones share the
/// connection thread, which stops when the last clone is dropped or [`SqliteStore::close`] runs.
#[derive(Clone)]
pub struct SqliteStore {
    tx: mpsc::Sender<Msg>,
    /// Target puts and deletes through this store (any clone): half of `targets_token`, the
    /// other half being SQLite's `data_version`, which moves only with other connections.
    pub(crate) target_writes: Arc<AtomicU64>,
    /// Check-state commits through this store; with `target_writes` and `data_version`, they
    /// tell whether a tenant's cached counts still hold.
    pub(crate) state_writes: Arc<AtomicU64>,
    /// Each tenant's last `status_counts` and the writes it was counted at. The steady state
    /// writes no state, so a dashboard's overview polls count a large tenant once, not every
    /// time (about 50 ms on the store's thread at 100,000 targets).
    pub(crate) counts: Arc<std::sync::Mutex<std::collections::HashMap<String, CachedCounts>>>,
}

/// Counts and the `(data_version, target writes, state writes)` they were read at.
pub(crate) type CachedCounts = ((i64, u64, u64), netmon_core::ports::StatusCounts);

/// What [`SqliteStore::prune_history`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Raw results (including legacy rows).
    pub results: u64,
    pub rollups: u64,
    pub outbox: u64,
    pub idempotency: u64,
    pub replies: u64,
    pub notifications: u64,
}

enum Location {
    File(PathBuf),
    Memory,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates its schema. The file is
    /// opened on the store's own thread, so this never blocks the async runtime.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, EmbeddedError> {
        let (store, ready) = Self::start(Location::File(path.as_ref().to_path_buf()))?;
        ready
            .await
            .map_err(|_| EmbeddedError::Worker("exited during open".into()))??;
        Ok(store)
    }

    /// A private in-memory database (one connection, so nothing else can see it); for tests.
    pub async fn in_memory() -> Result<Self, EmbeddedError> {
        let (store, ready) = Self::start(Location::Memory)?;
        ready
            .await
            .map_err(|_| EmbeddedError::Worker("exited during open".into()))??;
        Ok(store)
    }

    fn start(
        location: Location,
    ) -> Result<(Self, oneshot::Receiver<Result<(), EmbeddedError>>), EmbeddedError> {
        let (tx, mut rx) = mpsc::channel::<Msg>(QUEUE);
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("netmon-sqlite".into())
            .spawn(move || {
                let mut conn = match connect(&location) {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Run(job) => run_job(&mut conn, job),
                        Msg::Close(done) => {
                            rx.close();
                            // Finish what was queued before the close, then drop the connection
                            // (which checkpoints the WAL) before reporting.
                            let mut waiters = vec![done];
                            while let Ok(msg) = rx.try_recv() {
                                match msg {
                                    Msg::Run(job) => run_job(&mut conn, job),
                                    Msg::Close(done) => waiters.push(done),
                                }
                            }
                            drop(conn);
                            for done in waiters {
                                let _ = done.send(());
                            }
                            return;
                        }
                    }
                }
            })
            .map_err(|e| EmbeddedError::Worker(e.to_string()))?;
        let store = Self {
            tx,
            target_writes: Arc::default(),
            state_writes: Arc::default(),
            counts: Arc::default(),
        };
        Ok((store, ready_rx))
    }

    /// Finishes queued operations and closes the database; later operations fail with
    /// `Unavailable`. Optional (dropping every clone also closes it) but lets shutdown wait for
    /// the file to be closed cleanly.
    pub async fn close(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Msg::Close(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
    }

    /// Runs `f` on the connection thread.
    async fn call<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply_tx, reply_rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply_tx.send(f(conn));
        });
        self.tx
            .send(Msg::Run(job))
            .await
            .map_err(|_| StoreError::Unavailable("embedded store is closed".into()))?;
        reply_rx.await.map_err(|_| {
            StoreError::Unavailable("embedded store operation failed without a reply".into())
        })?
    }

    /// Runs `f` inside one IMMEDIATE transaction, committed only if `f` succeeds.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .db()?;
            let out = f(&tx)?;
            tx.commit().db()?;
            Ok(out)
        })
        .await
    }

    /// Deletes outbox entries published before `before`, idempotency and reply records that
    /// expired before it and notification records last attempted before it (kept as long as
    /// the history they explain). Part of [`SqliteStore::prune_history`].
    async fn prune_bookkeeping(&self, before: i64, pruned: &mut Pruned) -> Result<(), StoreError> {
        let (outbox, idempotency, replies, notifications) = self
            .write(move |tx| {
                let run = |sql: &str| -> Result<u64, StoreError> {
                    Ok(tx.prepare_cached(sql).db()?.execute([before]).db()? as u64)
                };
                Ok((
                    run("DELETE FROM outbox WHERE published_at IS NOT NULL AND published_at < ?1")?,
                    run("DELETE FROM idempotency WHERE expires_at < ?1")?,
                    run("DELETE FROM rpc_replies WHERE expires_at < ?1")?,
                    run("DELETE FROM notifications WHERE last_attempt_at < ?1")?,
                ))
            })
            .await?;
        pruned.outbox = outbox;
        pruned.idempotency = idempotency;
        pruned.replies = replies;
        pruned.notifications = notifications;
        Ok(())
    }
}

/// A panicking job drops its reply sender (its caller sees `Unavailable`) and its open
/// transaction rolls back on unwind; the thread keeps serving the others.
fn run_job(conn: &mut Connection, job: Job) {
    if std::panic::catch_unwind(AssertUnwindSafe(|| job(conn))).is_err() {
        tracing::error!("embedded store operation panicked");
    }
}

/// Creates a new database file readable by its owner only: it holds webhook secrets, channel
/// credentials, heartbeat tokens and key hashes. SQLite gives its WAL and shared-memory files the
/// same permissions. An existing file keeps the permissions its owner chose.
fn create_private(path: &Path) -> Result<(), EmbeddedError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(EmbeddedError::Create {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn connect(location: &Location) -> Result<Connection, EmbeddedError> {
    let mut conn = match location {
        Location::File(path) => {
            create_private(path)?;
            let conn = Connection::open(path)?;
            let mode: String =
                conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
            if !mode.eq_ignore_ascii_case("wal") {
                // Some filesystems (network mounts) cannot do WAL; the rollback journal is slower
                // but just as crash-safe, so carry on.
                tracing::warn!(path = %path.display(), %mode, "SQLite WAL mode unavailable");
            }
            conn
        }
        Location::Memory => Connection::open_in_memory()?,
    };
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    schema::migrate(&mut conn)?;
    Ok(conn)
}

// ---- shared helpers for the port implementations ----

/// Instants as nanoseconds since the epoch: exact and sortable. Out-of-range instants (beyond
/// 1677..2262) saturate, which keeps `since`/`before` comparisons meaningful.
pub(crate) fn nanos(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

pub(crate) fn from_nanos(n: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

pub(crate) fn encode<T: Serialize>(what: &str, value: &T) -> Result<String, StoreError> {
    // Domain types always serialize; a failure here is a bug, reported rather than panicking.
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("encode {what}: {e}")))
}

pub(crate) fn decode<T: DeserializeOwned>(what: &str, body: &str) -> Result<T, StoreError> {
    serde_json::from_str(body).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn version_from_db(what: &str, v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{what}: negative version {v}")))
}

pub(crate) fn version_to_db(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("version {v} out of range")))
}

/// Tables sharing the `(tenant, id, version, body)` shape.
#[derive(Clone, Copy)]
pub(crate) enum Versioned {
    Targets,
    Channels,
    CheckStates,
    Maintenance,
}

impl Versioned {
    fn table(self) -> &'static str {
        match self {
            Versioned::Targets => "targets",
            Versioned::Channels => "channels",
            Versioned::CheckStates => "check_states",
            Versioned::Maintenance => "maintenance",
        }
    }
}

/// Checks `expect` against the stored version and writes the row. `body` receives the new
/// version so the JSON can carry it. Must run inside a write transaction.
pub(crate) fn put_versioned(
    tx: &Transaction<'_>,
    kind: Versioned,
    tenant: &str,
    id: &str,
    expect: Expect,
    body: impl FnOnce(u64) -> Result<String, StoreError>,
) -> Result<u64, StoreError> {
    let table = kind.table();
    let what = format!("{table} {tenant}/{id}");
    let current: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT version FROM {table} WHERE tenant = ?1 AND id = ?2"
        ))
        .db()?
        .query_row([tenant, id], |r| r.get(0))
        .optional()
        .db()?;
    let current = current.map(|v| version_from_db(&what, v)).transpose()?;
    let next = expect.next_version(&what, current)?;
    let body = body(next)?;
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (tenant, id, version, body) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (tenant, id) DO UPDATE SET version = excluded.version, body = excluded.body"
    ))
    .db()?
    .execute(rusqlite::params![tenant, id, version_to_db(next)?, body])
    .db()?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nanos_saturate_and_roundtrip() {
        let t = DateTime::from_timestamp(1_800_000_000, 123_456_789).unwrap();
        assert_eq!(from_nanos(nanos(t)), t);
        assert_eq!(nanos(DateTime::<Utc>::MIN_UTC), i64::MIN);
        assert_eq!(nanos(DateTime::<Utc>::MAX_UTC), i64::MAX);
    }
}
