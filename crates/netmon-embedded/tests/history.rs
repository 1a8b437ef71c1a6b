//! Bounded history (raw results + hourly rollups): the numbers always equal aggregating the raw
//! results, pruning never loses an hour that is not rolled up, a restart mid-rollup counts
//! nothing twice, an old store migrates, and the steady-state size per target (ignored bench).

use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, TimeZone, Utc};
use netmon_core::history::{Granularity, HistoryBucket, aggregate, sample};
use netmon_core::observation::{Observation, PhaseTimings};
use netmon_core::ports::HistoryStore;
use netmon_core::result::{Outcome, ProbeResult, judge};
use netmon_core::{TargetId, TenantId};
use netmon_embedded::{Retention, SqliteStore};
use netmon_testkit::suites::fixtures;

/// SplitMix64: a seeded, dependency-free generator; failures name their seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A time after any wall clock these tests run at: a fresh store starts rolling up at its
/// creation hour, so these hours are rolled up only when the tests say so.
fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 3, 1, 0, 0, 0).unwrap()
}

fn hours(n: i64) -> Duration {
    Duration::hours(n)
}

/// A result as the prober makes it for an HTTPS target answering 200 (or failing).
fn http_result(
    tenant: &TenantId,
    target: &str,
    location: &str,
    at: DateTime<Utc>,
    up: bool,
    ms: f64,
) -> ProbeResult {
    let spec = fixtures::target(tenant, target, target).spec;
    // Whole microseconds, as the store keeps them, so results compare equal after a round trip.
    let us = |ms: f64| netmon_core::history::from_micros((ms * 1000.0).round() as i64);
    let obs = Observation {
        connected: up,
        status: up.then_some(200),
        ip: Some("203.0.113.7".parse().unwrap()),
        certificate_expires_at: Some(Utc.with_ymd_and_hms(2031, 6, 1, 0, 0, 0).unwrap()),
        timings: PhaseTimings {
            dns_ms: Some(us(ms * 0.1)),
            connect_ms: Some(us(ms * 0.2)),
            tls_ms: Some(us(ms * 0.3)),
            first_byte_ms: Some(us(ms * 0.9)),
            total_ms: us(ms),
        },
        error: (!up).then(|| {
            netmon_core::observation::ProbeError::new(
                netmon_core::observation::ErrorKind::Timeout,
                "timed out after 10s",
            )
        }),
        ..Observation::default()
    };
    let mut r = judge(tenant, &spec, location, at, &obs);
    r.slot = Some(at - Duration::milliseconds(3));
    r
}

fn random_result(rng: &mut Rng, tenant: &TenantId, span_hours: i64) -> ProbeResult {
    let target = ["a", "b", "c"][rng.below(3) as usize];
    let location = ["eu", "us"][rng.below(2) as usize];
    let at = base() + Duration::seconds(rng.below(span_hours as u64 * 3600) as i64);
    let up = rng.below(5) != 0;
    let ms = (rng.below(2_000_000) as f64) / 1000.0;
    http_result(tenant, target, location, at, up, ms)
}

/// A fresh store starts rolling up at the hour it was created (today); this moves it on to
/// [`base`] (empty hours are skipped), as a store running until then would have.
async fn fresh() -> SqliteStore {
    let store = SqliteStore::in_memory().await.expect("store");
    store.roll_up(base()).await.expect("catch up to base");
    store
}

/// What the raw results say, per target: the reference every answer must equal.
#[derive(Default)]
struct Model(std::collections::BTreeMap<(String, i64, String), ProbeResult>);

impl Model {
    /// Keeps the first of duplicates, as the store does. Durations as the store keeps them
    /// (whole microseconds, rounded up).
    fn add(&mut self, r: &ProbeResult) {
        let mut r = r.clone();
        r.duration_ms =
            netmon_core::history::from_micros(netmon_core::history::to_micros(r.duration_ms));
        let key = (
            r.target.to_string(),
            r.started_at.timestamp_nanos_opt().unwrap(),
            r.location.clone(),
        );
        self.0.entry(key).or_insert(r);
    }

    fn buckets(
        &self,
        target: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        g: Granularity,
    ) -> Vec<HistoryBucket> {
        aggregate(
            self.0
                .values()
                .filter(|r| {
                    r.target.as_str() == target && r.started_at >= from && r.started_at < to
                })
                .map(sample),
            g,
        )
    }
}

async fn assert_matches(
    store: &SqliteStore,
    model: &Model,
    tenant: &TenantId,
    ranges: &[(DateTime<Utc>, DateTime<Utc>)],
    why: &str,
) {
    for target in ["a", "b", "c"] {
        let id = TargetId::parse(target).unwrap();
        for &(from, to) in ranges {
            for g in [Granularity::Hour, Granularity::Day] {
                let got = store
                    .buckets(tenant, &id, from, to, g)
                    .await
                    .expect("buckets");
                let want = model.buckets(target, from, to, g);
                if got != want {
                    // The first difference only: a 90-day series would flood the output.
                    let i = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
                    panic!(
                        "{why}: target {target}, [{from}, {to}), {g:?}: {} buckets, expected \
                         {}; first difference at {i}: {:?} != {:?}",
                        got.len(),
                        want.len(),
                        got.get(i),
                        want.get(i)
                    );
                }
            }
        }
    }
}

/// Random results, duplicates and late results (for hours already rolled up, or being rolled
/// up), recorded between rollup batches: at every step the store's buckets equal aggregating
/// the raw results, for whole and partial ranges, by hour and by day.
#[tokio::test]
async fn rollups_always_equal_aggregating_the_raw_results() {
    const SPAN: i64 = 8;
    for seed in 0..12_u64 {
        let mut rng = Rng(seed);
        let store = fresh().await;
        let tenant = fixtures::tenant("roll");
        let mut model = Model::default();
        let mut recorded: Vec<ProbeResult> = Vec::new();
        let ranges = [
            (base() - hours(1), base() + hours(SPAN + 1)),
            (
                base() + Duration::minutes(17),
                base() + hours(5) + Duration::seconds(1_234),
            ),
            (base() + hours(2), base() + hours(3)),
        ];
        let mut now = base() + Duration::minutes(30);
        for step in 0..40 {
            // A batch of new results, some of them copies of earlier ones (redeliveries).
            let mut batch: Vec<ProbeResult> = (0..rng.below(40))
                .map(|_| random_result(&mut rng, &tenant, SPAN))
                .collect();
            for _ in 0..rng.below(5) {
                if !recorded.is_empty() {
                    batch.push(recorded[rng.below(recorded.len() as u64) as usize].clone());
                }
            }
            store.record(&batch).await.expect("record");
            for r in &batch {
                model.add(r);
            }
            recorded.extend(batch);
            // Roll up a few batches of one target each, so hours are left half-done too.
            for _ in 0..rng.below(4) {
                store.roll_up_batch(now, 1).await.expect("roll up batch");
            }
            assert_matches(
                &store,
                &model,
                &tenant,
                &ranges,
                &format!("seed {seed} step {step}"),
            )
            .await;
            now += Duration::minutes(20);
        }
        store
            .roll_up(base() + hours(SPAN + 2))
            .await
            .expect("roll up");
        assert_matches(
            &store,
            &model,
            &tenant,
            &ranges,
            &format!("seed {seed} rolled"),
        )
        .await;
        // Once every hour is rolled up and the raw results are gone, whole hours still match.
        let pruned = store
            .prune_history(
                base() + hours(SPAN + 4),
                Retention {
                    raw: hours(2),
                    history: Duration::days(90),
                },
            )
            .await
            .expect("prune");
        assert_eq!(
            pruned.results as usize,
            model.0.len(),
            "seed {seed}: all raw pruned"
        );
        assert_matches(
            &store,
            &model,
            &tenant,
            &ranges[..1],
            &format!("seed {seed} pruned"),
        )
        .await;
        // A late copy of a pruned result can no longer be told apart: it is dropped.
        store.record(&recorded[..1]).await.expect("record late");
        assert_matches(
            &store,
            &model,
            &tenant,
            &ranges[..1],
            &format!("seed {seed} late"),
        )
        .await;
    }
}

/// The raw retention has passed for every hour, but only rolled-up hours lose their raw
/// results; the rest are kept until rolled up.
#[tokio::test]
async fn pruning_never_removes_an_hour_not_rolled_up() {
    let store = fresh().await;
    let tenant = fixtures::tenant("keep");
    let mut model = Model::default();
    let batch: Vec<ProbeResult> = (0..10 * 60)
        .map(|m| {
            let at = base() + Duration::minutes(m);
            http_result(&tenant, "a", "eu", at, m % 7 != 0, 40.0 + (m % 13) as f64)
        })
        .collect();
    store.record(&batch).await.expect("record");
    batch.iter().for_each(|r| model.add(r));
    let keep = Retention {
        raw: hours(2),
        history: Duration::days(90),
    };
    let later = base() + hours(30);
    let a = TargetId::parse("a").unwrap();
    let raw_left = |store: SqliteStore, tenant: TenantId| async move {
        store
            .results_since(&tenant, &TargetId::parse("a").unwrap(), base(), 10_000)
            .await
            .expect("results")
            .len()
    };

    let pruned = store.prune_history(later, keep).await.expect("prune");
    assert_eq!(pruned.results, 0, "nothing is rolled up yet");
    assert_eq!(raw_left(store.clone(), tenant.clone()).await, 600);

    // Roll up three hours only (one target: one batch per hour).
    for _ in 0..3 {
        assert_eq!(
            store.roll_up_batch(later, 10).await.expect("batch"),
            Some(true)
        );
    }
    let pruned = store.prune_history(later, keep).await.expect("prune");
    assert_eq!(pruned.results, 180, "exactly the three rolled-up hours");
    assert_eq!(raw_left(store.clone(), tenant.clone()).await, 420);
    let whole = [(base(), base() + hours(10))];
    assert_matches(&store, &model, &tenant, &whole, "after a partial prune").await;

    store.roll_up(later).await.expect("roll up");
    let pruned = store.prune_history(later, keep).await.expect("prune");
    assert_eq!(pruned.results, 420);
    assert_matches(&store, &model, &tenant, &whole, "all rolled up and pruned").await;
    let day = store
        .buckets(
            &tenant,
            &a,
            base(),
            base() + Duration::days(1),
            Granularity::Day,
        )
        .await
        .expect("day");
    assert_eq!((day[0].probes, day[0].up), (600, 600 - 86));
}

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(fixtures::unique("netmon-history-test"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
    fn db(&self) -> PathBuf {
        self.0.join("netmon.db")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stopped between rollup batches (each batch is its own transaction, so a kill inside one
/// is the same as before it), with a late result recorded meanwhile; reopened, it finishes
/// without counting anything twice or missing anything.
#[tokio::test]
async fn a_restart_mid_rollup_counts_nothing_twice() {
    let dir = TempDir::new();
    let tenant = fixtures::tenant("restart");
    let mut model = Model::default();
    let store = SqliteStore::open(dir.db()).await.expect("open");
    store.roll_up(base()).await.expect("catch up to base");
    let mut batch = Vec::new();
    for m in 0..180 {
        for (i, t) in ["a", "b", "c"].into_iter().enumerate() {
            let at = base() + Duration::minutes(m) + Duration::seconds(i as i64);
            batch.push(http_result(
                &tenant,
                t,
                "eu",
                at,
                (m + i as i64) % 5 != 0,
                20.0 + m as f64,
            ));
        }
    }
    store.record(&batch).await.expect("record");
    batch.iter().for_each(|r| model.add(r));
    let now = base() + hours(4);
    // Hour 0 done (a batch per target, then one finding none left), hour 1 one target in.
    for _ in 0..5 {
        store.roll_up_batch(now, 1).await.expect("batch");
    }
    // Late results for the half-rolled hour: for a target done and one not yet done.
    let late = [
        http_result(
            &tenant,
            "a",
            "us",
            base() + hours(1) + Duration::minutes(5),
            true,
            7.0,
        ),
        http_result(
            &tenant,
            "c",
            "us",
            base() + hours(1) + Duration::minutes(6),
            false,
            9.0,
        ),
        http_result(
            &tenant,
            "b",
            "us",
            base() + Duration::minutes(8),
            true,
            11.0,
        ),
    ];
    store.record(&late).await.expect("record late");
    late.iter().for_each(|r| model.add(r));
    store.close().await;
    drop(store);

    let store = SqliteStore::open(dir.db()).await.expect("reopen");
    let done = store.roll_up(now).await.expect("roll up");
    assert_eq!(done.hours, 2, "hours 1 (finished) and 2");
    // Rolling up again finds nothing to do and changes nothing.
    assert_eq!(store.roll_up(now).await.expect("again").batches, 0);
    let whole = [
        (base(), base() + hours(3)),
        (base(), base() + Duration::days(1)),
    ];
    assert_matches(&store, &model, &tenant, &whole, "after restart").await;
    // And from the rollups alone.
    store
        .prune_history(
            now,
            Retention {
                raw: Duration::zero(),
                history: Duration::days(90),
            },
        )
        .await
        .expect("prune");
    let a = TargetId::parse("a").unwrap();
    assert!(
        store
            .results_since(&tenant, &a, base(), 10)
            .await
            .expect("raw")
            .is_empty()
    );
    assert_matches(&store, &model, &tenant, &whole, "from rollups only").await;
}

/// A version 4 store (every raw result as JSON in `results`) with 90 days of history opens,
/// rolls its past hours up in background batches, then prunes them; the numbers do not change.
#[tokio::test]
async fn an_old_store_with_90_days_of_results_migrates_and_rolls_up() {
    let dir = TempDir::new();
    let path = dir.db();
    let tenant = fixtures::tenant("old");
    let now = Utc::now();
    let start = Granularity::Day.floor(now) - Duration::days(90);
    let mut model = Model::default();
    let mut old = Vec::new();
    let mut rng = Rng(7);
    // Three targets, one result every 20 minutes for 90 days.
    let mut t = start;
    while t < now - Duration::minutes(1) {
        for target in ["a", "b", "c"] {
            let up = rng.below(10) != 0;
            old.push(http_result(
                &tenant,
                target,
                "local",
                t,
                up,
                rng.below(900) as f64 + 0.5,
            ));
        }
        t += Duration::minutes(20);
    }
    old.iter().for_each(|r| model.add(r));
    {
        SqliteStore::open(&path)
            .await
            .expect("create")
            .close()
            .await;
        let conn = rusqlite::Connection::open(&path).expect("raw open");
        conn.execute_batch(
            "DROP INDEX targets_flags; DROP INDEX check_states_flags; ALTER TABLE targets DROP COLUMN enabled; ALTER TABLE targets DROP COLUMN tags; ALTER TABLE check_states DROP COLUMN status; ALTER TABLE check_states DROP COLUMN incident_open; DROP INDEX targets_public; ALTER TABLE targets DROP COLUMN public; \
             DROP TABLE series; DROP TABLE locations; DROP TABLE details; DROP TABLE raw; \
             DROP TABLE rollups; DROP TABLE rollup_state; UPDATE schema_version SET version = 4;",
        )
        .expect("roll back to version 4");
        let tx = conn.unchecked_transaction().expect("tx");
        {
            let mut insert = tx
                .prepare(
                    "INSERT INTO results (tenant, target, location, started_at, up, duration_ms, \
                     body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .expect("prepare");
            for r in &old {
                insert
                    .execute(rusqlite::params![
                        r.tenant.as_str(),
                        r.target.as_str(),
                        r.location,
                        r.started_at.timestamp_nanos_opt().unwrap(),
                        r.outcome == Outcome::Up,
                        r.duration_ms,
                        serde_json::to_string(r).unwrap(),
                    ])
                    .expect("insert");
            }
        }
        tx.commit().expect("commit");
    }

    let store = SqliteStore::open(&path).await.expect("opens and migrates");
    let a = TargetId::parse("a").unwrap();
    let window = [(start, now + hours(1))];
    assert_matches(
        &store,
        &model,
        &tenant,
        &window,
        "migrated, nothing rolled up",
    )
    .await;
    assert_eq!(
        store
            .results_since(&tenant, &a, start, 100_000)
            .await
            .expect("raw")
            .len(),
        old.len() / 3,
        "legacy rows are read as raw results"
    );
    // New results go to the compact table; a redelivered legacy result is still recognised.
    let new = http_result(&tenant, "a", "local", now, true, 12.0);
    store
        .record(&[new.clone(), old[old.len() - 1].clone()])
        .await
        .expect("record");
    model.add(&new);

    let done = store.roll_up(now + hours(2)).await.expect("roll up");
    assert!(done.hours >= 90 * 24, "{done:?}");
    let pruned = store
        .prune_history(now + hours(2), Retention::default())
        .await
        .expect("prune");
    assert!(pruned.results as usize > old.len() * 9 / 10, "{pruned:?}");
    // Rollups older than 90 days are gone too.
    let kept = [(
        Granularity::Day.floor(now + hours(2) - Duration::days(89)),
        now + hours(1),
    )];
    assert_matches(&store, &model, &tenant, &kept, "rolled up and pruned").await;
    let recent = store
        .results_since(&tenant, &a, start, 100_000)
        .await
        .expect("raw");
    assert!(
        recent
            .first()
            .is_some_and(|r| r.started_at >= now - hours(51)),
        "only the raw window is left"
    );
    assert_eq!(recent.last(), Some(&new));
}

/// Bytes on disk per one-minute target in steady state: `NETMON_BENCH_TARGETS` targets (100)
/// probed every minute for `NETMON_BENCH_DAYS` (92) days, rolled up and pruned hourly with the
/// defaults (48 h raw, 90 days of rollups). Run:
/// `cargo test --release -p netmon-embedded --test history -- --ignored --nocapture steady_state`
#[tokio::test]
#[ignore = "a measurement (minutes), not a check"]
async fn steady_state_bytes_per_target() {
    let env = |k: &str, d: i64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (targets, days) = (
        env("NETMON_BENCH_TARGETS", 100),
        env("NETMON_BENCH_DAYS", 92),
    );
    let dir = TempDir::new();
    let path = dir.db();
    let store = SqliteStore::open(&path).await.expect("open");
    let tenant = fixtures::tenant("bench");
    let names: Vec<String> = (0..targets).map(|i| format!("target-{i:03}")).collect();
    let start = Granularity::Hour.floor(Utc::now()) + hours(1);
    let mut rng = Rng(1);
    let began = std::time::Instant::now();
    for hour in 0..days * 24 {
        let h = start + hours(hour);
        for minute in 0..60 {
            // One job per 50 targets, as `netmon up` shards them.
            for chunk in names.chunks(50) {
                let batch: Vec<ProbeResult> = chunk
                    .iter()
                    .map(|name| {
                        let at = h
                            + Duration::minutes(minute)
                            + Duration::milliseconds(rng.below(900) as i64);
                        let ms = 20.0 + rng.below(60_000) as f64 / 1000.0;
                        http_result(&tenant, name, "local", at, rng.below(500) != 0, ms)
                    })
                    .collect();
                store.record(&batch).await.expect("record");
            }
        }
        let now = h + hours(1) + netmon_embedded::sqlite::SETTLE;
        store.roll_up(now).await.expect("roll up");
        store
            .prune_history(now, Retention::default())
            .await
            .expect("prune");
    }
    store.close().await;
    let size = file_size(&path);
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    let (raw, rollups, details) = (count("raw"), count("rollups"), count("details"));
    // Per table and index, when this SQLite has the dbstat table.
    if let Ok(mut stmt) =
        conn.prepare("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
    {
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .unwrap();
        for row in rows {
            let (name, bytes) = row.unwrap();
            println!("  {name}: {} bytes per target", bytes / targets);
        }
    }
    let free: i64 = conn
        .query_row("PRAGMA freelist_count", [], |r| r.get(0))
        .unwrap();
    let page: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    println!(
        "{targets} one-minute targets, {days} days simulated in {:.0?}: {size} bytes on disk \
         ({} per target); raw rows {raw}, rollup rows {rollups}, detail rows {details}, \
         free pages {free} x {page} B",
        began.elapsed(),
        size / targets as u64,
    );
}

fn file_size(path: &Path) -> u64 {
    let wal = path.with_extension("db-wal");
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
        + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
}

/// Bytes per raw result: 10,000 typical results (10 HTTPS targets, one a minute) in the compact
/// table, and the same as JSON rows of the version 1-4 `results` table; each store VACUUMed,
/// minus the same store empty. Run:
/// `cargo test -p netmon-embedded --test history -- --ignored --nocapture raw_row_bytes`
#[tokio::test]
#[ignore = "a measurement, not a check"]
async fn raw_row_bytes_before_and_after() {
    let tenant = fixtures::tenant("size");
    let mut rng = Rng(3);
    let results: Vec<ProbeResult> = (0..1_000)
        .flat_map(|m| (0..10).map(move |t| (m, t)))
        .map(|(m, t)| {
            let at = base() + Duration::minutes(m) + Duration::milliseconds(rng.below(900) as i64);
            let ms = 20.0 + rng.below(60_000) as f64 / 1000.0;
            http_result(&tenant, &format!("target-{t:02}"), "local", at, true, ms)
        })
        .collect();
    let dir = TempDir::new();
    let size = |path: &Path| {
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.execute_batch("VACUUM").expect("vacuum");
        drop(conn);
        file_size(path) as f64
    };
    let (empty, compact, legacy) = (dir.0.join("e.db"), dir.0.join("c.db"), dir.0.join("l.db"));
    for path in [&empty, &compact, &legacy] {
        SqliteStore::open(path).await.expect("open").close().await;
    }
    let store = SqliteStore::open(&compact).await.expect("open");
    store.record(&results).await.expect("record");
    store.close().await;
    {
        let conn = rusqlite::Connection::open(&legacy).expect("open");
        conn.execute_batch(
            "DROP TABLE series; DROP TABLE locations; DROP TABLE details; DROP TABLE raw; \
             DROP TABLE rollups; DROP TABLE rollup_state;",
        )
        .expect("drop");
        let tx = conn.unchecked_transaction().expect("tx");
        for r in &results {
            tx.execute(
                "INSERT INTO results (tenant, target, location, started_at, up, duration_ms, \
                 body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    r.tenant.as_str(),
                    r.target.as_str(),
                    r.location,
                    r.started_at.timestamp_nanos_opt().unwrap(),
                    true,
                    r.duration_ms,
                    serde_json::to_string(r).unwrap(),
                ],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    }
    let base_size = size(&empty);
    let n = results.len() as f64;
    println!(
        "bytes per raw result: version 4 (JSON row + 2 indexes) {:.0}, version 5 (compact) {:.0}",
        (size(&legacy) - base_size) / n,
        (size(&compact) - base_size) / n
    );
}
