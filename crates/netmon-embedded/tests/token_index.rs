//! `/ping/{token}` is public: its lookup is by index, not a scan of every tenant's targets.

use std::time::{Duration, Instant};

use netmon_core::HumanDuration;
use netmon_core::ports::{Expect, TargetStore};
use netmon_core::target::{CheckSpec, HeartbeatCheck};
use netmon_embedded::SqliteStore;
use netmon_testkit::suites::fixtures;

fn token(i: usize) -> String {
    format!("token-{i:06}-0123456789")
}

async fn put_heartbeats(store: &SqliteStore, n: usize) {
    for i in 0..n {
        let tenant = fixtures::tenant(&format!("t{}", i % 100));
        let mut t = fixtures::target(&tenant, &format!("job-{i}"), "Job");
        t.spec.check = CheckSpec::Heartbeat(HeartbeatCheck {
            period: HumanDuration::from_secs(3600),
            grace: HumanDuration::from_secs(60),
            token: Some(token(i)),
        });
        store.put_target(t, Expect::Absent).await.expect("put");
    }
}

/// The time per lookup does not grow with the targets stored: 10,000 heartbeat targets of 100
/// tenants against 100. A scan decodes every target per lookup (about 25 ms each at 3,000
/// targets), 100 times the work at 10,000; by index both are a thread hop and a B-tree probe.
/// A ratio on one machine, best of three rounds each, so neither the machine's speed nor a
/// moment's load decides it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookup_time_does_not_grow_with_the_targets_stored() {
    const LOOKUPS: usize = 1_000;
    async fn per_lookup(n: usize) -> Duration {
        let store = SqliteStore::in_memory().await.expect("store");
        put_heartbeats(&store, n).await;
        let mut best = Duration::MAX;
        for _ in 0..3 {
            let started = Instant::now();
            for i in 0..LOOKUPS {
                let wanted = (i * 7919) % n;
                let found = store
                    .find_by_heartbeat_token(&token(wanted))
                    .await
                    .expect("lookup")
                    .expect("every token is found");
                assert_eq!(found.id().as_str(), format!("job-{wanted}"));
            }
            best = best.min(started.elapsed() / LOOKUPS as u32);
        }
        assert_eq!(
            store
                .find_by_heartbeat_token("no-such-token-0123")
                .await
                .expect("lookup"),
            None
        );
        best
    }
    let (few, many) = (per_lookup(100).await, per_lookup(10_000).await);
    println!("per lookup: {few:?} at 100 targets, {many:?} at 10,000");
    assert!(
        many < few * 5,
        "a lookup takes {many:?} at 10,000 targets and {few:?} at 100: it scans"
    );
}

/// A database written before the index gets it filled in when it is opened.
#[tokio::test]
async fn the_migration_indexes_existing_targets() {
    let dir = std::env::temp_dir().join(fixtures::unique("netmon-token-index"));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("netmon.db");
    let store = SqliteStore::open(&path).await.expect("open");
    put_heartbeats(&store, 3).await;
    store.close().await;
    drop(store);
    // Back to schema version 2, as an older netmon left it: without what v3 (the token index),
    // v4 (the notification log), v5 (bounded history) and v6 (the public index) added.
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute_batch(
        "DROP INDEX targets_flags; DROP INDEX check_states_flags; ALTER TABLE targets DROP COLUMN enabled; ALTER TABLE targets DROP COLUMN tags; ALTER TABLE check_states DROP COLUMN status; ALTER TABLE check_states DROP COLUMN incident_open; DROP INDEX targets_public; ALTER TABLE targets DROP COLUMN public;
         DROP TABLE series; DROP TABLE locations; DROP TABLE details; DROP TABLE raw;
         DROP TABLE rollups; DROP TABLE rollup_state;
         DROP INDEX targets_by_heartbeat_token;
         ALTER TABLE targets DROP COLUMN heartbeat_token;
         DROP TABLE notifications;
         UPDATE schema_version SET version = 2;",
    )
    .expect("downgrade");
    drop(conn);

    let store = SqliteStore::open(&path).await.expect("reopen migrates");
    for i in 0..3 {
        let found = store
            .find_by_heartbeat_token(&token(i))
            .await
            .expect("lookup")
            .expect("found after the migration");
        assert_eq!(found.id().as_str(), format!("job-{i}"));
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
