//! Peak memory and duration of one cloud scheduler tick over N one-minute targets, on the
//! emulator (issue 14: a minute of 100,000 targets within 128 MB).
//!
//!     scripts/bench-scheduler [--targets N]
//!
//! Two ways over the same stored targets, each in its own child process so that one cannot
//! raise the other's high-water marks:
//! - `read-all`: what the function did before streaming: `all_targets` (every target decoded),
//!   then `Scheduler::plan_ahead_at` building every job of the minute and sending them in one
//!   `enqueue`.
//! - `stream`: the function as deployed (`SchedulerFunction::tick`: the outbox sweep, the
//!   claim, `Scheduler::plan_ahead_from`), on its first tick after a cold start.
//! - `held`: the same function's second and third ticks (measured together): the second
//!   rereads the shards to hold them if they fit (`DynamoStateStore`'s 32 MB limit), the third
//!   plans from what it holds; above the limit both stream as the first did.
//!
//! Each child reports the tick's CPU time (user + system: Lambda gives a function a share of a
//! vCPU proportional to its memory, a full one at 1,769 MB), its peak heap (a counting allocator, reset before the tick) and its peak
//! RSS (`VmHWM`, reset through `/proc/self/clear_refs` before the tick; it includes the runtime,
//! the SDK clients and the binary, as Lambda's "Max Memory Used" does).
//!
//! The targets are written straight into the schedule shards (the layout of docs/dynamodb.md,
//! round robin over the 1,024 shards rather than by hash): the tick reads only the shards, and
//! 100,000 `put_target` transactions would take the emulator an hour.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{DateTime, Utc};
use netmon_app::services::scheduler::Scheduler;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::state::DynamoStateStore;
use netmon_aws::resources::{ENV_PROBE_JOBS_QUEUE_URL, ENV_STATE_TABLE};
use netmon_aws::sns::{Routes, SnsBus, Topic};
use netmon_aws::sqs::SqsJobQueue;
use netmon_core::TenantId;
use netmon_core::ports::TargetStore;
use netmon_core::target::Target;
use netmon_lambda::env::Env;
use netmon_lambda::functions::scheduler::{SchedulerConfig, SchedulerFunction};
use netmon_lambda_testkit::emulator_clients;
use netmon_testkit::clock::ManualClock;
use netmon_testkit::emulator;

#[path = "support/cpu.rs"]
mod cpu;
#[path = "support/measure.rs"]
mod measure;

use cpu::cpu_seconds;
use measure::{LIVE, PEAK, mib, reset_peaks, status_kb, targets_arg};

const SHARDS: usize = 1024;
const CHILD: &str = "NETMON_BENCH_SCHEDULER_WAY";

fn minute() -> DateTime<Utc> {
    // A whole minute, 2027-01-15T08:00:00Z.
    DateTime::from_timestamp(1_800_000_000, 0).unwrap_or_default()
}

/// A typical HTTP target (two conditions, two tags, ~0.5 KB of JSON), half of them in one large
/// tenant and the rest in tenants of 50.
fn target(i: usize) -> Target {
    let tenant = if i.is_multiple_of(2) {
        "acme".to_owned()
    } else {
        format!("tenant-{}", i / 100)
    };
    let spec = serde_json::from_value(serde_json::json!({
        "id": format!("svc-{i:06}"),
        "name": format!("Service {i} health endpoint"),
        "http": {"url": format!("https://svc-{i}.example.com/healthz"), "method": "GET"},
        "interval": "1m",
        "timeout": "10s",
        "conditions": ["[STATUS] == 200", "[RESPONSE_TIME] < 800"],
        "tags": ["prod", format!("team-{}", i % 17)],
    }))
    .unwrap_or_else(|e| panic!("bench target {i}: {e}"));
    let at = DateTime::from_timestamp(1_767_225_600, 0).unwrap_or_default();
    Target {
        tenant: TenantId::parse(tenant).unwrap_or_else(|e| panic!("tenant: {e}")),
        spec,
        version: 1,
        created_at: at,
        updated_at: at,
    }
}

async fn seed(clients: &Clients, table: &str, n: usize) -> usize {
    let mut shards: Vec<Vec<(String, String)>> = vec![Vec::new(); SHARDS];
    let mut bytes = 0;
    for i in 0..n {
        let t = target(i);
        let name = format!("T#{}#{}", t.tenant, t.id());
        let body = serde_json::to_string(&t).unwrap_or_default();
        bytes += body.len();
        shards[i % SHARDS].push((name, body));
    }
    let items: Vec<WriteRequest> = shards
        .into_iter()
        .enumerate()
        .filter(|(_, entries)| !entries.is_empty())
        .map(|(shard, entries)| {
            let size: usize = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
            let mut put = PutRequest::builder()
                .item("pk", AttributeValue::S("SCHED".into()))
                .item("sk", AttributeValue::S(format!("{shard:04}")))
                .item("bytes", AttributeValue::N(size.to_string()));
            for (name, body) in entries {
                put = put.item(name, AttributeValue::S(body));
            }
            WriteRequest::builder()
                .put_request(put.build().expect("put request"))
                .build()
        })
        .collect();
    for chunk in items.chunks(25) {
        let out = clients
            .dynamodb
            .batch_write_item()
            .request_items(table, chunk.to_vec())
            .send()
            .await
            .expect("BatchWriteItem on the emulator");
        assert!(
            out.unprocessed_items().is_none_or(|u| u.is_empty()),
            "the emulator left items unprocessed"
        );
    }
    bytes
}

async fn child(way: &str) {
    let env = Env::process();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("endpoint");
    let region = std::env::var("AWS_REGION").expect("region");
    let sdk = emulator_clients(&endpoint, &region).await;
    let clients = Clients::new(&sdk);
    let config = SchedulerConfig::from_env(&env).expect("scheduler config");
    let clock = Arc::new(ManualClock::new(minute()));
    let read_all = {
        let store = Arc::new(DynamoStateStore::new(
            clients.dynamodb.clone(),
            config.state_table.clone(),
        ));
        let jobs = Arc::new(SqsJobQueue::new(
            clients.sqs.clone(),
            config.probe_jobs_queue_url.clone(),
            Arc::new(netmon_app::clock::SystemClock),
            netmon_lambda::policy::PROBES_PER_MESSAGE,
        ));
        let bus = Arc::new(SnsBus::new(
            clients.sns.clone(),
            Routes::new()
                .topic(Topic::ProbeResults, config.probe_results_topic_arn.clone())
                .topic(Topic::Incidents, config.incidents_topic_arn.clone()),
        ));
        // As the function wired it: jobs of at most 50 targets on 10 s slots.
        let scheduler =
            Scheduler::new(jobs, store.clone(), bus, 50).with_slot(netmon_lambda::policy::SLOT);
        (store, scheduler)
    };
    let function = SchedulerFunction::new(&clients, config).with_tick_clock(clock);
    if way == "held" {
        // The first tick after a cold start streams the shards and measures them; the measured
        // ticks then fill the held shards (if they fit) and use them.
        function
            .tick(minute() - chrono::TimeDelta::minutes(1))
            .await
            .expect("warm-up tick");
    }

    // Reset both high-water marks: what is measured is the tick alone, on a warm process.
    reset_peaks();
    let rss_before = status_kb("VmRSS:");
    let heap_before = LIVE.load(Ordering::Relaxed);
    let started = Instant::now();
    let cpu_before = cpu_seconds();
    let (targets, probes, jobs) = match way {
        "read-all" => {
            let (store, scheduler) = &read_all;
            let all = store.all_targets().await.expect("all_targets");
            let report = scheduler
                .plan_ahead_at(&all, minute(), minute())
                .await
                .expect("plan");
            (all.len(), report.probes, report.jobs)
        }
        "held" => {
            let fill = function.tick(minute()).await.expect("tick");
            let out = function
                .tick(minute() + chrono::TimeDelta::minutes(1))
                .await
                .expect("tick");
            (out.targets, fill.probes + out.probes, fill.jobs + out.jobs)
        }
        _ => {
            let out = function.tick(minute()).await.expect("tick");
            (out.targets, out.probes, out.jobs)
        }
    };
    let elapsed = started.elapsed();
    let cpu = cpu_seconds() - cpu_before;
    println!(
        "{}",
        serde_json::json!({
            "way": way,
            "targets": targets,
            "probes": probes,
            "jobs": jobs,
            "seconds": elapsed.as_secs_f64(),
            "cpu_seconds": cpu,
            "heap_before_mib": mib(heap_before),
            "heap_peak_mib": mib(PEAK.load(Ordering::Relaxed)),
            "rss_before_mib": rss_before as f64 / 1024.0,
            "rss_peak_mib": status_kb("VmHWM:") as f64 / 1024.0,
        })
    );
}

#[tokio::main]
async fn main() {
    if let Ok(way) = std::env::var(CHILD) {
        child(&way).await;
        return;
    }
    let n = targets_arg(100_000);
    let emu = emulator::start();
    let res = emulator::provision_async(emulator::unique_prefix("schedmem"), 30).await;
    let sdk = emulator_clients(&emu.endpoint, &emu.region).await;
    let clients = Clients::new(&sdk);
    eprintln!("seeding {n} targets into the schedule shards…");
    let bytes = seed(&clients, res.get(ENV_STATE_TABLE), n).await;
    eprintln!(
        "seeded: {:.1} MB of target JSON ({} B each)",
        bytes as f64 / 1e6,
        bytes / n.max(1)
    );
    let exe = std::env::current_exe().expect("current exe");
    println!(
        "| way | targets | probes | jobs | tick s (emulator) | CPU s | heap peak MiB (before) | RSS peak MiB (before) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for way in ["read-all", "stream", "held"] {
        // The emulator's SQS slows down as a queue grows (and allows one purge a minute): each
        // way sends to a fresh queue.
        let queue = clients
            .sqs
            .create_queue()
            .queue_name(format!("{}-{way}-jobs", res.prefix))
            .send()
            .await
            .expect("CreateQueue on the emulator")
            .queue_url
            .expect("a queue URL");
        eprintln!("{way}: one tick in a fresh process…");
        let out = Command::new(&exe)
            .env(CHILD, way)
            .env("AWS_ENDPOINT_URL", &emu.endpoint)
            .env("AWS_REGION", &emu.region)
            .envs(&res.vars)
            .env(ENV_PROBE_JOBS_QUEUE_URL, &queue)
            .output()
            .expect("run the child");
        if !out.status.success() {
            panic!("{way} failed:\n{}", String::from_utf8_lossy(&out.stderr));
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("child's report");
        println!(
            "| {way} | {} | {} | {} | {:.1} | {:.2} | {:.1} ({:.1}) | {:.1} ({:.1}) |",
            v["targets"],
            v["probes"],
            v["jobs"],
            v["seconds"].as_f64().unwrap_or(0.0),
            v["cpu_seconds"].as_f64().unwrap_or(0.0),
            v["heap_peak_mib"].as_f64().unwrap_or(0.0),
            v["heap_before_mib"].as_f64().unwrap_or(0.0),
            v["rss_peak_mib"].as_f64().unwrap_or(0.0),
            v["rss_before_mib"].as_f64().unwrap_or(0.0),
        );
    }
}
