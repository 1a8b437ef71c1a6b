//! Every store suite against `SqliteStore`, in memory and on disk, plus what only a file can show:
//! data survives reopening, damaged rows are reported as corrupt, newer schemas are refused.

use std::path::{Path, PathBuf};

use chrono::Duration;
use netmon_core::events::Envelope;
use netmon_core::incident::Status;
use netmon_core::ports::{
    Claim, Expect, HistoryStore, Idempotency, Outbox, ReplyStore, StateStore, StoreError,
    TargetStore,
};
use netmon_core::result::Outcome;
use netmon_embedded::{EmbeddedError, Retention, SCHEMA_VERSION, SqliteStore};
use netmon_testkit::suites::{self, fixtures};

/// A state commit with no incidents and no events; returns the new version.
async fn commit_bare(
    store: &SqliteStore,
    tenant: &netmon_core::ids::TenantId,
    id: &str,
    expect: Expect,
    state: &netmon_core::incident::CheckState,
) -> u64 {
    store
        .commit_state(tenant, &fixtures::target_id(id), expect, state, &[], &[])
        .await
        .expect("state commit")
}

/// A directory under the system temp dir, removed (with its databases) on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(fixtures::unique("netmon-embedded-test"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }

    /// A fresh database path inside the directory.
    fn db(&self) -> PathBuf {
        self.0.join(format!("{}.db", fixtures::unique("db")))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn memory() -> SqliteStore {
    SqliteStore::in_memory().await.expect("in-memory store")
}

async fn file(path: &Path) -> SqliteStore {
    SqliteStore::open(path).await.expect("open store file")
}

macro_rules! suite_tests {
    ($($suite:ident),* $(,)?) => {
        mod in_memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $suite() {
                    suites::$suite::run_all(memory).await;
                }
            )*
        }
        mod on_disk {
            use super::*;
            $(
                #[tokio::test]
                async fn $suite() {
                    let dir = TempDir::new();
                    suites::$suite::run_all(|| file_owned(dir.db())).await;
                }
            )*
        }
    };
}

async fn file_owned(path: PathBuf) -> SqliteStore {
    file(&path).await
}

suite_tests!(
    target_store,
    channel_store,
    state_store,
    outbox,
    idempotency,
    history,
    heartbeat,
    api_keys,
    maintenance,
    replies,
    notification_log,
);

/// The combined entry point, against one file shared by every case (as a long-lived adapter
/// would be): cases must not depend on an empty store.
#[tokio::test]
async fn all_suites_share_one_file() {
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    suites::run_all_store_suites(|| std::future::ready(store.clone())).await;
}

/// Writes one of everything, returns what was written.
async fn write_some(store: &SqliteStore) -> (netmon_core::TenantId, Envelope) {
    let t = fixtures::tenant("re");
    let x = fixtures::target_id("web");
    store
        .put_target(fixtures::target(&t, "web", "Web"), Expect::Absent)
        .await
        .expect("put target");
    let ev = fixtures::event(&t, &fixtures::unique("ev"), fixtures::at(1));
    store
        .commit_state(
            &t,
            &x,
            Expect::Absent,
            &fixtures::state(Status::Down, fixtures::at(1)),
            &[fixtures::incident(
                &t,
                "web",
                "web-1",
                fixtures::at(1),
                None,
            )],
            std::slice::from_ref(&ev),
        )
        .await
        .expect("commit");
    store
        .record(&[fixtures::result(
            &t,
            "web",
            "local",
            fixtures::at(1),
            Outcome::Down,
        )])
        .await
        .expect("record");
    store
        .complete("job-1", fixtures::at(1), Duration::days(1))
        .await
        .expect("complete");
    (t, ev)
}

async fn assert_all_there(store: &SqliteStore, t: &netmon_core::TenantId, ev: &Envelope) {
    let x = fixtures::target_id("web");
    let target = store
        .get_target(t, &x)
        .await
        .expect("get")
        .expect("target kept");
    assert_eq!((target.spec.name.as_str(), target.version), ("Web", 1));
    let state = store
        .load_state(t, &x)
        .await
        .expect("load")
        .expect("state kept");
    assert_eq!((state.value.status, state.version), (Status::Down, 1));
    assert_eq!(
        store.list_incidents(t, 10).await.expect("incidents").len(),
        1
    );
    let pending = store.pending(100).await.expect("pending");
    assert_eq!(
        pending.iter().map(|e| &e.envelope).collect::<Vec<_>>(),
        [ev]
    );
    let history = store
        .results_since(t, &x, fixtures::at(0), 10)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(
        store
            .claim("job-1", fixtures::at(2), Duration::seconds(30))
            .await
            .expect("claim"),
        Claim::Done
    );
}

#[tokio::test]
async fn data_survives_close_and_reopen() {
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let (t, ev) = write_some(&store).await;
    store.close().await;
    let err = store
        .get_target(&t, &fixtures::target_id("web"))
        .await
        .expect_err("closed");
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    drop(store);

    let reopened = file(&path).await;
    assert_all_there(&reopened, &t, &ev).await;
}

#[tokio::test]
async fn data_survives_drop_without_close() {
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let (t, ev) = write_some(&store).await;
    // No close: as after a crash, only committed transactions matter; WAL lets the new
    // connection open while the old thread is still winding down.
    drop(store);
    let reopened = file(&path).await;
    assert_all_there(&reopened, &t, &ev).await;
}

#[tokio::test]
async fn file_is_in_wal_mode_with_a_schema_version() {
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let version: i64 = raw
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .expect("schema version");
    assert_eq!(version, SCHEMA_VERSION);
    drop(raw);
    store.close().await;
    // Opening again does not re-run migrations.
    file(&path).await.close().await;
}

/// A store written before the status page's and the overview's columns (schema 5) answers both
/// from them once migrated: the steps fill them from the stored bodies.
#[tokio::test]
async fn a_schema_5_store_gains_the_columns_the_status_page_and_overview_read() {
    use netmon_core::incident::Status;
    use netmon_core::ports::{Expect, StateStore, TargetStore};
    use netmon_testkit::suites::fixtures::{at, open_incident_state, state, target, tenant};
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let t = tenant("mig");
    for (id, public, enabled) in [("a", true, true), ("b", false, false), ("c", true, true)] {
        let mut x = target(&t, id, "T");
        (x.spec.public, x.spec.enabled) = (public, enabled);
        store.put_target(x, Expect::Absent).await.expect("create");
    }
    let down = open_incident_state(&t, Status::Down, "c-5", at(5));
    for (id, s) in [("a", state(Status::Up, at(0))), ("c", down)] {
        commit_bare(&store, &t, id, Expect::Absent, &s).await;
    }
    store.close().await;
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    raw.execute_batch(
        "DROP INDEX targets_flags; DROP INDEX check_states_flags; ALTER TABLE targets DROP COLUMN enabled; ALTER TABLE targets DROP COLUMN tags;
         ALTER TABLE check_states DROP COLUMN status;
         ALTER TABLE check_states DROP COLUMN incident_open;
         DROP INDEX targets_public; ALTER TABLE targets DROP COLUMN public;
         UPDATE schema_version SET version = 5;",
    )
    .expect("back to schema 5");
    drop(raw);
    let reopened = file(&path).await;
    let (shown, more) = reopened.public_targets(&t, 10).await.expect("list");
    let ids: Vec<String> = shown.iter().map(|x| x.id().to_string()).collect();
    assert_eq!((ids, more), (vec!["a".to_owned(), "c".to_owned()], 0));
    let (flags, more) = reopened.target_flags(&t, 10, true).await.expect("flags");
    let flags: Vec<(String, bool, Vec<String>)> = flags
        .into_iter()
        .map(|f| (f.id.to_string(), f.enabled, f.tags))
        .collect();
    let suite = vec!["suite".to_owned()];
    assert_eq!(
        (flags, more),
        (
            vec![
                ("a".into(), true, suite.clone()),
                ("b".into(), false, suite.clone()),
                ("c".into(), true, suite)
            ],
            false
        )
    );
    let mut states: Vec<(String, Status, bool)> = reopened
        .state_flags(&t)
        .await
        .expect("flags")
        .into_iter()
        .map(|(id, f)| (id.to_string(), f.status, f.incident_open))
        .collect();
    states.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(
        states,
        vec![
            ("a".into(), Status::Up, false),
            ("c".into(), Status::Down, true)
        ]
    );
}

/// `all_targets` reads in pages of 1,000 (one trip to the store's thread each): every target of
/// every tenant comes back once, in tenant and id order, and an unreadable one is skipped
/// without stopping the pages after it.
#[tokio::test]
async fn all_targets_reads_every_page_once_and_skips_an_unreadable_row() {
    use netmon_core::ports::{Expect, TargetStore};
    use netmon_testkit::suites::fixtures::{target, tenant};
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let tenants = [tenant("all-a"), tenant("all-b"), tenant("all-c")];
    let mut expected = Vec::new();
    for i in 0..2_500 {
        let t = &tenants[i % 3];
        let id = format!("t{i:04}");
        store
            .put_target(target(t, &id, "T"), Expect::Absent)
            .await
            .expect("create");
        expected.push((t.to_string(), id));
    }
    expected.sort();
    let read = |targets: Vec<netmon_core::target::Target>| -> Vec<(String, String)> {
        targets
            .iter()
            .map(|t| (t.tenant.to_string(), t.id().to_string()))
            .collect()
    };
    assert_eq!(read(store.all_targets().await.expect("all")), expected);
    store.close().await;
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    let (bad_tenant, bad_id) = expected[1_500].clone();
    raw.execute(
        "UPDATE targets SET body = 'not json' WHERE tenant = ?1 AND id = ?2",
        [&bad_tenant, &bad_id],
    )
    .expect("damage");
    drop(raw);
    let reopened = file(&path).await;
    expected.remove(1_500);
    assert_eq!(read(reopened.all_targets().await.expect("all")), expected);
}

/// The targets token moves with every target put or delete through the store and with any
/// commit by another connection (the CLI's `--store`), and stays while only this store's other
/// writes (states, results) happen: the embedded scheduler skips its periodic reread on it.
#[tokio::test]
async fn the_targets_token_moves_with_target_writes_and_other_connections() {
    use netmon_core::incident::Status;
    use netmon_core::ports::{Expect, TargetStore};
    use netmon_testkit::suites::fixtures::{at, state, target, target_id, tenant};
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let t = tenant("token");
    let token = async || store.targets_token().await.expect("token").expect("known");
    let t0 = token().await;
    assert_eq!(token().await, t0, "nothing written");
    store
        .put_target(target(&t, "a", "A"), Expect::Absent)
        .await
        .expect("create");
    let t1 = token().await;
    assert_ne!(t1, t0, "a put");
    commit_bare(&store, &t, "a", Expect::Absent, &state(Status::Up, at(0))).await;
    assert_eq!(token().await, t1, "a state commit is not a target change");
    assert!(
        store
            .delete_target(&t, &target_id("a"))
            .await
            .expect("delete")
    );
    let t2 = token().await;
    assert_ne!(t2, t1, "a delete");
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute(
            "INSERT INTO targets (tenant, id, version, body) VALUES ('elsewhere', 'z', 1, '{}')",
            [],
        )
        .expect("a commit elsewhere");
    assert_ne!(token().await, t2, "another connection's commit");
}

/// The overview's counts in one grouped query agree with counting each target: enabled ones by
/// state (none stored is unknown), disabled ones apart, open incidents whatever the flag, and
/// nothing of another tenant's.
#[tokio::test]
async fn status_counts_agree_with_counting_each_target() {
    use netmon_core::incident::Status;
    use netmon_core::ports::{Expect, StatusCounts, TargetStore};
    use netmon_testkit::suites::fixtures::{at, open_incident_state, state, target, tenant};
    let store = SqliteStore::in_memory().await.expect("store");
    let (t, other) = (tenant("counts"), tenant("counts-other"));
    let open = |s: Status| open_incident_state(&t, s, "i", at(5));
    let cases = [
        ("a", true, Some(state(Status::Up, at(0)))),
        ("b", true, Some(state(Status::Up, at(0)))),
        ("c", true, Some(open(Status::Down))),
        ("d", true, None),
        ("e", false, Some(open(Status::Down))),
        ("f", false, None),
        ("g", true, Some(state(Status::Unknown, at(0)))),
    ];
    for (id, enabled, st) in cases {
        let mut x = target(&t, id, "T");
        x.spec.enabled = enabled;
        store.put_target(x, Expect::Absent).await.expect("create");
        if let Some(st) = st {
            commit_bare(&store, &t, id, Expect::Absent, &st).await;
        }
    }
    store
        .put_target(target(&other, "z", "Z"), Expect::Absent)
        .await
        .expect("create");
    commit_bare(&store, &other, "z", Expect::Absent, &open(Status::Down)).await;
    let counts = store
        .status_counts(&t)
        .await
        .expect("counts")
        .expect("counted");
    assert_eq!(
        counts,
        StatusCounts {
            total: 7,
            up: 2,
            down: 1,
            unknown: 2,
            disabled: 2,
            open_incidents: 2,
        }
    );
    let empty = store
        .status_counts(&tenant("counts-none"))
        .await
        .expect("counts");
    assert_eq!(empty, Some(StatusCounts::default()));
}

/// The counts are kept between calls (the steady state writes nothing that changes them), so
/// every write that can change them must be seen: a state commit, a target put or delete through
/// the store, and a commit by another connection (the CLI's `--store`).
#[tokio::test]
async fn status_counts_follow_every_write_that_changes_them() {
    use netmon_core::ports::{Expect, StatusCounts, TargetStore};
    use netmon_testkit::suites::fixtures::{at, state, target, target_id, tenant};
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let t = tenant("counted");
    let counts = async || {
        store
            .status_counts(&t)
            .await
            .expect("counts")
            .expect("counted")
    };
    for id in ["a", "b"] {
        store
            .put_target(target(&t, id, "T"), Expect::Absent)
            .await
            .expect("create");
    }
    let both_unknown = StatusCounts {
        total: 2,
        unknown: 2,
        ..StatusCounts::default()
    };
    assert_eq!(counts().await, both_unknown);
    assert_eq!(counts().await, both_unknown, "asked again, nothing written");

    let version = commit_bare(&store, &t, "a", Expect::Absent, &state(Status::Up, at(0))).await;
    assert_eq!(counts().await.up, 1, "a state commit");
    commit_bare(
        &store,
        &t,
        "a",
        Expect::Version(version),
        &state(Status::Down, at(1)),
    )
    .await;
    assert_eq!(
        (counts().await.up, counts().await.down),
        (0, 1),
        "a state change"
    );

    let mut b = target(&t, "b", "T");
    b.spec.enabled = false;
    store.put_target(b, Expect::Any).await.expect("disable");
    assert_eq!(counts().await.disabled, 1, "a target put");
    assert!(
        store
            .delete_target(&t, &target_id("a"))
            .await
            .expect("delete")
    );
    assert_eq!(
        counts().await,
        StatusCounts {
            total: 1,
            disabled: 1,
            ..StatusCounts::default()
        },
        "a target delete"
    );

    let other = rusqlite::Connection::open(&path).expect("second connection");
    other
        .execute(
            "UPDATE targets SET enabled = 1 WHERE tenant = ?1 AND id = 'b'",
            [t.as_str()],
        )
        .expect("a commit elsewhere");
    assert_eq!(counts().await.unknown, 1, "another connection's commit");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = TempDir::new();
    let path = dir.db();
    file(&path).await.close().await;
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    raw.execute(
        "UPDATE schema_version SET version = ?1",
        [SCHEMA_VERSION + 1],
    )
    .expect("bump");
    drop(raw);
    let err = SqliteStore::open(&path).await.err().expect("must refuse");
    assert!(matches!(err, EmbeddedError::NewerSchema { .. }), "{err}");
}

#[tokio::test]
async fn damaged_rows_are_corrupt_not_panics() {
    let dir = TempDir::new();
    let path = dir.db();
    let store = file(&path).await;
    let (t, _) = write_some(&store).await;
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    raw.execute_batch(
        "UPDATE targets SET body = '{\"not\": \"a target\"}';
         UPDATE check_states SET body = 'not json';
         UPDATE outbox SET body = '[]';
         UPDATE details SET body = 'not json';",
    )
    .expect("damage");
    drop(raw);
    let x = fixtures::target_id("web");
    let corrupt = |r: Result<(), StoreError>, what: &str| {
        assert!(matches!(r, Err(StoreError::Corrupt(_))), "{what}: {r:?}");
    };
    corrupt(store.get_target(&t, &x).await.map(drop), "get_target");
    // The scheduler's read skips rows it cannot decode instead of stopping every target.
    assert_eq!(store.all_targets().await.map(|v| v.len()).ok(), Some(0));
    corrupt(store.load_state(&t, &x).await.map(drop), "load_state");
    corrupt(store.list_states(&t).await.map(drop), "list_states");
    corrupt(store.pending(10).await.map(drop), "pending");
    corrupt(
        store
            .results_since(&t, &x, fixtures::at(0), 10)
            .await
            .map(drop),
        "results_since",
    );
    assert!(!StoreError::Corrupt(String::new()).is_retryable());
}

#[tokio::test]
async fn prune_history_bounds_the_tables_that_grow() {
    let store = memory().await;
    let t = fixtures::tenant("pr");
    let x = fixtures::target_id("x");
    let results: Vec<_> = (0..12_000)
        .map(|i| fixtures::result(&t, "x", "eu", fixtures::at(i), Outcome::Up))
        .collect();
    store.record(&results).await.expect("record");
    let ev = fixtures::event(&t, "pr-ev", fixtures::at(0));
    let kept = fixtures::event(&t, "pr-kept", fixtures::at(0));
    store
        .commit_state(
            &t,
            &x,
            Expect::Absent,
            &fixtures::state(Status::Up, fixtures::at(0)),
            &[],
            &[ev.clone(), kept.clone()],
        )
        .await
        .expect("commit");
    store
        .mark_published(std::slice::from_ref(&ev.id))
        .await
        .expect("mark");
    store
        .claim("old", fixtures::at(0), Duration::seconds(10))
        .await
        .expect("claim");
    store
        .claim("live", fixtures::at(0), Duration::days(365 * 100))
        .await
        .expect("claim");
    let reply = |id: &str| netmon_core::rpc::RpcReply {
        correlation_id: id.to_owned(),
        tenant: t.clone(),
        at: fixtures::at(0),
        outcome: netmon_core::rpc::RpcOutcome::Failure {
            message: "x".into(),
        },
    };
    store
        .put_reply(&reply("expired"), fixtures::at(60))
        .await
        .expect("reply");
    store
        .put_reply(&reply("fresh"), fixtures::at(20_000))
        .await
        .expect("reply");

    // Results and leases are dated by the fixtures; published outbox rows carry wall-clock
    // time, so only a cutoff in the real future is sure to cover them.
    // Raw results go by whole hours: the cutoff at(11_000) keeps its hour, from at(10_800).
    let cutoff = fixtures::at(11_000);
    let keep = |d: Duration| Retention { raw: d, history: d };
    let first = store
        .prune_history(cutoff + Duration::hours(48), keep(Duration::hours(48)))
        .await
        .expect("prune");
    let pruned = first;
    assert_eq!(
        pruned.results, 10_800,
        "batched deletes remove every old result"
    );
    let left = store
        .results_since(&t, &x, fixtures::at(0), 20_000)
        .await
        .expect("query");
    assert_eq!(left.len(), 1_200);
    assert_eq!(left[0].started_at, fixtures::at(10_800));
    assert_eq!(pruned.idempotency, 1, "only the expired claim");
    assert_eq!(pruned.replies, 1, "only the expired reply");
    assert!(store.get_reply("expired").await.expect("get").is_none());
    assert!(store.get_reply("fresh").await.expect("get").is_some());
    assert_eq!(
        store
            .claim("live", fixtures::at(1), Duration::seconds(10))
            .await
            .expect("claim"),
        Claim::InProgress
    );

    let far = chrono::Utc::now() + Duration::days(1);
    // `far` is wall-clock based, so whether it also covers the fixture-dated results depends on
    // today's date; only the outbox counts are asserted.
    let second = store
        .prune_history(far, keep(Duration::zero()))
        .await
        .expect("prune");
    assert_eq!(first.outbox + second.outbox, 1, "only the published entry");
    let pending: Vec<_> = store
        .pending(10)
        .await
        .expect("pending")
        .into_iter()
        .map(|e| e.envelope.id)
        .collect();
    assert_eq!(pending, vec![kept.id], "pending entries are never pruned");
}

/// The result [`write_some`] records, as a version 1-4 store kept it.
fn legacy_result(t: &netmon_core::TenantId) -> netmon_core::result::ProbeResult {
    fixtures::result(t, "web", "local", fixtures::at(1), Outcome::Down)
}

/// Turns a current database back into a version 4 one: no V5 tables, results (given) as JSON
/// rows of the V1 `results` table.
pub(crate) fn to_version_4(
    conn: &rusqlite::Connection,
    results: &[netmon_core::result::ProbeResult],
) {
    conn.execute_batch(
        "DROP INDEX targets_flags; DROP INDEX check_states_flags; ALTER TABLE targets DROP COLUMN enabled; ALTER TABLE targets DROP COLUMN tags; ALTER TABLE check_states DROP COLUMN status; ALTER TABLE check_states DROP COLUMN incident_open; DROP INDEX targets_public; ALTER TABLE targets DROP COLUMN public; \
         DROP TABLE series; DROP TABLE locations; DROP TABLE details; DROP TABLE raw; \
         DROP TABLE rollups; DROP TABLE rollup_state; UPDATE schema_version SET version = 4;",
    )
    .expect("roll back to version 4");
    let mut insert = conn
        .prepare(
            "INSERT INTO results (tenant, target, location, started_at, up, duration_ms, body) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .expect("prepare");
    for r in results {
        insert
            .execute(rusqlite::params![
                r.tenant.as_str(),
                r.target.as_str(),
                r.location,
                r.started_at.timestamp_nanos_opt().expect("in range"),
                r.outcome == Outcome::Up,
                r.duration_ms,
                serde_json::to_string(r).expect("encode"),
            ])
            .expect("insert legacy result");
    }
}

/// A database written by schema version 1 gains the version 2 tables on open, keeping its data.
#[tokio::test]
async fn a_version_1_database_is_migrated() {
    let dir = TempDir::new();
    let path = dir.db();
    let first = file(&path).await;
    let (t, ev) = write_some(&first).await;
    first.close().await;
    {
        let conn = rusqlite::Connection::open(&path).expect("open raw");
        to_version_4(&conn, &[legacy_result(&t)]);
        conn.execute_batch(
            "DROP TABLE notifications; \
             DROP TABLE api_keys; DROP TABLE maintenance; DROP TABLE rpc_replies; \
             DROP INDEX targets_by_heartbeat_token; \
             ALTER TABLE targets DROP COLUMN heartbeat_token; \
             UPDATE schema_version SET version = 1;",
        )
        .expect("roll back to version 1");
    }
    let store = file(&path).await;
    assert_all_there(&store, &t, &ev).await;
    let key = fixtures::api_key(
        &t,
        netmon_core::apikey::Role::Admin,
        "after",
        fixtures::at(1),
    );
    netmon_core::ports::ApiKeyStore::create_key(&store, &key)
        .await
        .expect("the version 2 tables exist");
    let conn = rusqlite::Connection::open(&path).expect("open raw");
    let version: i64 = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .expect("version");
    assert_eq!(version, SCHEMA_VERSION);
}
