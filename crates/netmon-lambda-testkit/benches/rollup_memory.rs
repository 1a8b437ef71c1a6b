//! Peak memory of the hourly history rollup of one tenant-hour of N one-minute targets, on the
//! emulator (issue 14: 10,000 targets within 64 MB).
//!
//!     scripts/bench-rollup [--targets N]
//!
//! The parent records one hour of one-minute results for a tenant, as the recorder does: one
//! batch per minute and target group at the tenant's level (the scheduler's jobs), through
//! `DynamoHistoryStore::record_batch`. Two ways, each its own tenant:
//! - `grouped`: the tenant's level (`netmon_core::group::level_for`), as deployed;
//! - `one-partition`: every block at level 0, one partition per tenant-hour as before groups
//!   (read by the same streaming rollup, so this isolates the keying, not the old code).
//!
//! A child process per way then records the tenant's first block of the next hour once that
//! hour has settled, which rolls the hour up (the recorder's trigger), and reports the call's
//! peak heap (a counting allocator, reset before it) and peak RSS (`VmHWM`, reset likewise;
//! it includes the runtime, the SDK client and the binary, as Lambda's "Max Memory Used"
//! does).

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/measure.rs"]
mod measure;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use futures::stream::{self, StreamExt};
use netmon_aws::dynamo::history::{DynamoHistoryStore, SETTLE};
use netmon_aws::resources::ENV_HISTORY_TABLE;
use netmon_core::group::{self, Group};
use netmon_core::history::Granularity;
use netmon_core::ids::{TargetId, TenantId};
use netmon_core::observation::PhaseTimings;
use netmon_core::ports::HistoryStore;
use netmon_core::result::{Outcome, ProbeResult};
use netmon_lambda_testkit::emulator_clients;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::emulator;

use cpu::cpu_seconds;
use measure::{LIVE, PEAK, mib, reset_peaks, status_kb, targets_arg};

const CHILD: &str = "NETMON_BENCH_ROLLUP_WAY";
const TENANT: &str = "NETMON_BENCH_ROLLUP_TENANT";

fn hour() -> DateTime<Utc> {
    // 2027-01-15T08:00:00Z.
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

fn id(i: usize) -> TargetId {
    TargetId::parse(format!("svc-{i:06}")).unwrap_or_else(|e| panic!("target id: {e}"))
}

/// A typical HTTP result: 200, phase timings, one in 40 down.
fn result(tenant: &TenantId, target: &TargetId, at: DateTime<Utc>, i: usize) -> ProbeResult {
    let ms = 40.0 + (i % 300) as f64 * 1.7;
    ProbeResult {
        tenant: tenant.clone(),
        target: target.clone(),
        location: "eu-west-1".into(),
        started_at: at + TimeDelta::milliseconds((i % 10_000) as i64),
        duration_ms: ms,
        outcome: if i.is_multiple_of(40) {
            Outcome::Down
        } else {
            Outcome::Up
        },
        status_code: Some(200),
        timings: PhaseTimings {
            dns_ms: Some(1.2),
            connect_ms: Some(8.5),
            tls_ms: Some(15.25),
            first_byte_ms: Some(ms - 5.0),
            total_ms: ms,
        },
        slot: Some(at),
        ip: None,
        certificate_expires_at: None,
        conditions: Vec::new(),
        error: None,
    }
}

/// Where the emulator and the history table are.
struct Place {
    endpoint: String,
    region: String,
    table: String,
}

impl Place {
    async fn store(&self, clock: Arc<ManualClock>) -> DynamoHistoryStore {
        let sdk = emulator_clients(&self.endpoint, &self.region).await;
        let client = aws_sdk_dynamodb::Client::new(&sdk);
        DynamoHistoryStore::new(client, self.table.clone(), clock)
    }
}

/// One hour of one-minute results of `n` targets, a batch per minute and group at `level`.
async fn seed(place: &Place, tenant: &TenantId, n: usize, level: u8) -> usize {
    let clock = Arc::new(ManualClock::new(hour() + TimeDelta::minutes(59)));
    let store = place.store(clock).await;
    let mut groups: std::collections::BTreeMap<Group, Vec<TargetId>> = Default::default();
    for i in 0..n {
        let t = id(i);
        groups.entry(Group::of(&t, level)).or_default().push(t);
    }
    // Blocks of about 150 results, as jobs of up to 50 targets would write three of.
    let batches: Vec<(DateTime<Utc>, &[TargetId])> = (0..60)
        .flat_map(|m| {
            let at = hour() + TimeDelta::minutes(m);
            groups
                .values()
                .flat_map(move |ids| ids.chunks(150).map(move |c| (at, c)))
        })
        .collect();
    let blocks = batches.len();
    stream::iter(batches)
        .for_each_concurrent(8, |(at, ids)| {
            let store = &store;
            async move {
                let results: Vec<ProbeResult> = ids
                    .iter()
                    .enumerate()
                    .map(|(i, t)| result(tenant, t, at, i))
                    .collect();
                store
                    .record_batch(&results, Some(level))
                    .await
                    .expect("record on the emulator");
            }
        })
        .await;
    blocks
}

async fn child(way: &str) {
    let tenant = TenantId::parse(std::env::var(TENANT).expect("tenant")).expect("tenant id");
    let next = hour() + TimeDelta::hours(1);
    let clock = Arc::new(ManualClock::new(next + SETTLE + TimeDelta::minutes(1)));
    let place = Place {
        endpoint: std::env::var("AWS_ENDPOINT_URL").expect("endpoint"),
        region: std::env::var("AWS_REGION").expect("region"),
        table: std::env::var(ENV_HISTORY_TABLE).expect("history table"),
    };
    let store = place.store(clock).await;
    let first = result(&tenant, &id(0), next + SETTLE, 0);

    reset_peaks();
    let rss_before = status_kb("VmRSS:");
    let heap_before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    // The next hour's first block after the hour settled: it rolls the hour up.
    store
        .record_batch(&[first], Some(0))
        .await
        .expect("record the trigger");
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    let heap_peak = PEAK.load(Ordering::Relaxed);
    let rss_peak = status_kb("VmHWM:");
    // The rollup happened: a target's hour is served by its slot.
    let buckets = store
        .buckets(&tenant, &id(7), hour(), next, Granularity::Hour)
        .await
        .expect("buckets");
    let probes: u32 = buckets.iter().map(|b| b.probes).sum();
    println!(
        "{}",
        serde_json::json!({
            "way": way,
            "probes_of_one_target": probes,
            "seconds": elapsed.as_secs_f64(),
            "cpu_seconds": cpu,
            "heap_before_mib": mib(heap_before),
            "heap_peak_mib": mib(heap_peak),
            "rss_before_mib": rss_before as f64 / 1024.0,
            "rss_peak_mib": rss_peak as f64 / 1024.0,
        })
    );
}

#[tokio::main]
async fn main() {
    if let Ok(way) = std::env::var(CHILD) {
        child(&way).await;
        return;
    }
    let n = targets_arg(10_000);
    let emu = emulator::start();
    let res = emulator::provision_async(emulator::unique_prefix("rollmem"), 30).await;
    let place = Place {
        endpoint: emu.endpoint.clone(),
        region: emu.region.clone(),
        table: res.get(ENV_HISTORY_TABLE).to_owned(),
    };
    let exe = std::env::current_exe().expect("current exe");
    println!(
        "| way | targets | level | blocks | rollup s (emulator) | CPU s | heap peak MiB (before) | RSS peak MiB (before) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for way in ["grouped", "one-partition"] {
        let level = if way == "grouped" {
            group::level_for(n)
        } else {
            0
        };
        let tenant = TenantId::parse(format!("{}-{way}", res.prefix)).expect("tenant id");
        eprintln!("{way}: recording an hour of {n} one-minute targets at level {level}…");
        let seeding = Instant::now();
        let blocks = seed(&place, &tenant, n, level).await;
        eprintln!(
            "{way}: {blocks} blocks in {:.0} s; rolling up in a fresh process…",
            seeding.elapsed().as_secs_f64()
        );
        let out = Command::new(&exe)
            .env(CHILD, way)
            .env(TENANT, tenant.as_str())
            .env("AWS_ENDPOINT_URL", &emu.endpoint)
            .env("AWS_REGION", &emu.region)
            .envs(&res.vars)
            .output()
            .expect("run the child");
        if !out.status.success() {
            panic!("{way} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("child's report");
        assert_eq!(
            v["probes_of_one_target"], 60,
            "the rollup counted the hour: {v}"
        );
        println!(
            "| {way} | {n} | {level} | {blocks} | {:.1} | {:.2} | {:.1} ({:.1}) | {:.1} ({:.1}) |",
            v["seconds"].as_f64().unwrap_or(0.0),
            v["cpu_seconds"].as_f64().unwrap_or(0.0),
            v["heap_peak_mib"].as_f64().unwrap_or(0.0),
            v["heap_before_mib"].as_f64().unwrap_or(0.0),
            v["rss_peak_mib"].as_f64().unwrap_or(0.0),
            v["rss_before_mib"].as_f64().unwrap_or(0.0),
        );
    }
}
