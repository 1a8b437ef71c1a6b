//! The database holds secrets (channel credentials, heartbeat tokens, key hashes): a new one is
//! readable by its owner only, WAL file included.

#[cfg(unix)]
#[tokio::test]
async fn a_new_database_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;

    use netmon_core::ports::{Expect, TargetStore};
    use netmon_embedded::SqliteStore;
    use netmon_testkit::suites::fixtures;

    let dir = std::env::temp_dir().join(fixtures::unique("netmon-file-mode"));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("netmon.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let t = fixtures::tenant("mode");
    store
        .put_target(fixtures::target(&t, "a", "A"), Expect::Absent)
        .await
        .expect("write");
    for file in ["netmon.db", "netmon.db-wal", "netmon.db-shm"] {
        let p = dir.join(file);
        if let Ok(meta) = std::fs::metadata(&p) {
            assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
        } else {
            assert_ne!(file, "netmon.db", "the database file exists");
        }
    }
    store.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
