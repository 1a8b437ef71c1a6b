//! `scripts/cost`: the AWS bill per target-month, measured on the real pipeline.
//!
//! Every function runs as its binary wires it, fed by the local event-source runner with the
//! deployed batch sizes, batching windows and concurrency, against the emulator; the scheduler
//! is fired once per simulated minute, and the recorder (which has no event source: it drains
//! recorder-in on its schedule) every `HistoryFlushMinutes` simulated minutes, the template's
//! default (`resources::DRAINS`). After a warm-up, every AWS request each function makes is
//! counted and priced at list prices (design.md §5): DynamoDB read and write units computed from
//! the items sent and returned (`netmon_lambda_testkit::billing`, since the emulator fakes
//! consumed capacity), SQS and SNS requests per 64 KB chunk, Lambda requests and GB-seconds
//! from each handler's measured wall time at its deployed memory size
//! (`netmon_aws::resources::FUNCTIONS`, checked against infra/template.yaml by its tests).
//!
//!   cargo bench -p netmon-lambda-testkit --bench cost -- [--targets N] [--ticks N]
//!       [--warmup N] [--flapping N] [--latency-ms MS]
//!
//! Progress goes to stderr; the table to stdout, and its last line is
//! `cost per target-month at 60 s, 10000 targets: $X`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::any;
use netmon_aws::clients::Clients;
use netmon_aws::dynamo::history::{DynamoHistoryStore, SETTLE};
use netmon_aws::dynamo::state::{DynamoStateStore, SCHEDULE_FULL_READ_EVERY};
use netmon_aws::resources;
use netmon_core::TenantId;
use netmon_lambda_testkit::metrics::{
    CallCounter, CallSnapshot, EmulatorWaits, time_emulator_waits,
};
use netmon_lambda_testkit::runner::{Runner, RunningRunner, SourceSettings};
use netmon_testkit::clock::ManualClock;
use netmon_testkit::servers::WebhookReceiver;
use serde_json::json;
use support::{SOURCES, Stack, minute};

/// List prices, us-east-1, arm64 (design.md §5).
const LAMBDA_PER_REQUEST: f64 = 0.20 / 1e6;
const LAMBDA_PER_GB_S: f64 = 0.000_013_333_4;
const SQS_PER_REQUEST: f64 = 0.40 / 1e6;
const SNS_PER_PUBLISH: f64 = 0.50 / 1e6;
const DDB_PER_WRU: f64 = 0.625 / 1e6;
const DDB_PER_RRU: f64 = 0.125 / 1e6;
/// One probe a minute for a 30-day month.
const TICKS_PER_MONTH: f64 = 43_200.0;
/// Lambda's SQS pollers, which the runner stands in for: each event source mapping long-polls
/// its queue with (at least) five pollers waiting 20 s, so an idle queue costs this many
/// ReceiveMessage requests a minute. Modelled, not measured: the runner polls differently.
const IDLE_RECEIVES_PER_QUEUE_MINUTE: f64 = 5.0 * 3.0;
/// Waiting for a tick's work to drain: several batching windows and invocation budgets.
const IDLE: Duration = Duration::from_secs(1200);
/// Function timeouts on the emulator (see `deployed_runner`), and visibility timeouts above
/// them so that a long invocation's batch is not handed out again while it runs.
const EMULATOR_TIMEOUT: Duration = Duration::from_secs(300);
const VISIBILITY_S: u32 = 400;
const FUNCTIONS: [&str; 5] = support::FUNCTIONS;

struct Options {
    targets: usize,
    ticks: usize,
    warmup: usize,
    flapping: usize,
    latency: Duration,
}

fn usage() -> ! {
    eprintln!(
        "usage: scripts/cost [--targets N (1000)] [--ticks N measured minutes (8)] [--warmup N (2)] \
         [--flapping N targets that go down and up every 4 minutes (targets/200)] \
         [--latency-ms MS targets take to answer (100)]"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options {
        targets: 1000,
        ticks: 8,
        warmup: 2,
        flapping: usize::MAX,
        latency: Duration::from_millis(100),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        // `cargo bench` passes `--bench` to harness-less targets.
        if arg == "--bench" {
            continue;
        }
        let mut value = || -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage())
        };
        match arg.as_str() {
            "--targets" => o.targets = value() as usize,
            "--ticks" => o.ticks = value() as usize,
            "--warmup" => o.warmup = value() as usize,
            "--flapping" => o.flapping = value() as usize,
            "--latency-ms" => o.latency = Duration::from_millis(value()),
            _ => usage(),
        }
    }
    if o.targets == 0 || o.ticks == 0 {
        usage();
    }
    if o.flapping == usize::MAX {
        o.flapping = o.targets / 200;
    }
    o.flapping = o.flapping.min(o.targets);
    o
}

/// A target on 127.0.0.1 that answers 200 after `latency`, or 500 while `down`.
struct Site {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
}

impl Site {
    async fn start(latency: Duration) -> Site {
        let down = Arc::new(AtomicBool::new(false));
        let state = (down.clone(), latency);
        let app = Router::new()
            .fallback(any(
                |State((down, latency)): State<(Arc<AtomicBool>, Duration)>| async move {
                    tokio::time::sleep(latency).await;
                    if down.load(Ordering::SeqCst) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                },
            ))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a local target server");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Site { addr, down }
    }

    fn url(&self, i: usize) -> String {
        format!("http://{}/health?{i}", self.addr)
    }
}

/// Tenant sizes for `n` targets: one of 60 %, four of 10 %, 8 %, 6 % and 5 %, and the rest
/// in tenants of 1 to 5 targets.
fn tenant_sizes(n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    let mut left = n;
    for pct in [60, 10, 8, 6, 5] {
        let size = (n * pct / 100).min(left);
        if size > 0 {
            sizes.push(size);
            left -= size;
        }
    }
    let mut small = 1;
    while left > 0 {
        let size = small.min(left);
        sizes.push(size);
        left -= size;
        small = small % 5 + 1;
    }
    sizes
}

fn tenant_id(i: usize) -> TenantId {
    TenantId::parse(format!("tenant-{i:04}")).expect("tenant id")
}

/// A runner with every source at its deployed settings (batch sizes, windows, concurrency).
async fn deployed_runner(stack: &Stack) -> RunningRunner {
    let sqs = Clients::builder(&stack.sdk)
        .interceptor(Some(stack.counters["runner"].interceptor()))
        .build()
        .sqs;
    let mut runner = Runner::new(sqs, stack.region.clone())
        .scheduler(stack.scheduler.clone())
        .recorder(stack.recorder.clone())
        .tick_clock(stack.tick_clock.clone());
    for (name, queue) in SOURCES {
        let mut settings = SourceSettings::deployed(name).expect("deployed event source");
        // The emulator, not the function, is slow: a warm-up minute of first results is a
        // state transaction per target, and moto copies the whole table for each. Durations
        // are measured either way; a timeout would only retry the batch.
        settings.function_timeout = settings.function_timeout.max(EMULATOR_TIMEOUT);
        runner = runner.source_with(stack.var(queue), settings, stack.function(name));
    }
    runner.start().await.expect("runner starts")
}

fn hour_of(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    t.with_minute(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

struct Rollup {
    calls: CallSnapshot,
    duration: Duration,
    waits: EmulatorWaits,
}

/// The hourly rollups of every tenant-hour the run wrote, as the recorder runs them once an
/// hour has settled: its history store with a clock past `last_hour`'s settling, swept once
/// (the same `roll_pending` the recorder triggers), its calls counted apart.
async fn measure_rollup(stack: &Stack, last_hour: chrono::DateTime<chrono::Utc>) -> Rollup {
    let counter = CallCounter::new();
    let clients = Clients::builder(&stack.sdk)
        .interceptor(Some(counter.interceptor()))
        .build();
    let clock = Arc::new(ManualClock::new(
        last_hour + chrono::TimeDelta::hours(1) + SETTLE + chrono::TimeDelta::minutes(1),
    ));
    let store = DynamoHistoryStore::new(
        clients.dynamodb.clone(),
        stack.var(resources::ENV_HISTORY_TABLE),
        clock,
    );
    let started = Instant::now();
    let ((), waits) = time_emulator_waits(store.sweep_if_due()).await;
    Rollup {
        calls: counter.snapshot(),
        duration: started.elapsed(),
        waits,
    }
}

/// The scheduler holds the schedule shards between ticks and rereads them all only every
/// `SCHEDULE_FULL_READ_EVERY` ticks, a read the measured minutes may not include: one full read
/// by a store with nothing held, to be amortized.
async fn measure_schedule_full_read(stack: &Stack) -> CallSnapshot {
    let counter = CallCounter::new();
    let clients = Clients::builder(&stack.sdk)
        .interceptor(Some(counter.interceptor()))
        .build();
    let store = DynamoStateStore::new(
        clients.dynamodb.clone(),
        stack.var(resources::ENV_STATE_TABLE),
    );
    // After a cold start the first visit streams; the second reads everything to hold it.
    let mut targets = 0;
    let mut before = counter.snapshot();
    for _ in 0..2 {
        targets = 0;
        before = counter.snapshot();
        netmon_core::ports::TargetStore::visit_targets(&store, &mut |_| targets += 1)
            .await
            .expect("a full read of the schedule");
    }
    eprintln!(
        "cost: a full read of the schedule ({targets} targets), as every {SCHEDULE_FULL_READ_EVERY}th tick does"
    );
    counter.snapshot().since(&before)
}

/// One priced line of the bill, over the measured minutes.
struct Term {
    function: &'static str,
    service: &'static str,
    what: String,
    quantity: f64,
    unit: &'static str,
    dollars: f64,
    /// Paid once per minute whatever the number of targets.
    fixed: bool,
}

fn memory_gb(function: &str) -> f64 {
    resources::Function::named(function)
        .map(|f| f64::from(f.memory_mb) / 1024.0)
        .unwrap_or_else(|| panic!("{function} is not in resources::FUNCTIONS"))
}

/// A handler's wall time with the time it waited on the emulator replaced by AWS's latency for
/// the same rounds of requests ([`EmulatorWaits`]).
fn modelled(wall: Duration, waits: &EmulatorWaits) -> Duration {
    wall.saturating_sub(waits.busy) + waits.modelled
}

/// What the emulator's waits added to `function`'s billed duration, beyond AWS latency.
fn waits_term(function: &'static str, gb_s: f64) -> Term {
    Term {
        function,
        service: "Lambda",
        what: "the emulator's waits beyond AWS latency".into(),
        quantity: gb_s,
        unit: "GB-s",
        dollars: gb_s * LAMBDA_PER_GB_S,
        fixed: false,
    }
}

/// Billed Lambda duration: each invocation rounded up to 1 ms.
fn billed_seconds(durations: &[Duration]) -> f64 {
    durations
        .iter()
        .map(|d| d.as_micros().div_ceil(1000) as f64 / 1000.0)
        .sum()
}

/// The AWS terms of one function's (or the pollers') counted requests.
fn aws_terms(function: &'static str, snap: &CallSnapshot, terms: &mut Vec<Term>) {
    for ((service, what), b) in &snap.billed {
        let service: &'static str = match service.as_str() {
            "DynamoDB" => "DynamoDB",
            "SQS" => "SQS",
            "SNS" => "SNS",
            "SES" => "SES",
            _ => "other",
        };
        // The pollers' empty receives are modelled below; their queue-depth checks are the
        // runner's own (wait_idle), not Lambda's.
        if function == "pollers" && (what.ends_with("(empty)") || what == "GetQueueAttributes") {
            continue;
        }
        let fixed = function == "scheduler"
            && (what == "PutItem" || (what.starts_with("Query ") && service == "DynamoDB"));
        match service {
            "DynamoDB" => {
                if b.write_units > 0 {
                    terms.push(Term {
                        function,
                        service,
                        what: format!("{what} write units"),
                        quantity: b.write_units as f64,
                        unit: "WRU",
                        dollars: b.write_units as f64 * DDB_PER_WRU,
                        fixed,
                    });
                }
                if b.read_half_units > 0 {
                    let rru = b.read_half_units as f64 / 2.0;
                    terms.push(Term {
                        function,
                        service,
                        what: format!("{what} read units"),
                        quantity: rru,
                        unit: "RRU",
                        dollars: rru * DDB_PER_RRU,
                        fixed,
                    });
                }
            }
            "SQS" | "SNS" => {
                let price = if service == "SQS" {
                    SQS_PER_REQUEST
                } else {
                    SNS_PER_PUBLISH
                };
                terms.push(Term {
                    function,
                    service,
                    what: what.clone(),
                    quantity: b.requests as f64,
                    unit: "requests",
                    dollars: b.requests as f64 * price,
                    fixed,
                });
            }
            _ => terms.push(Term {
                function,
                service,
                what: format!("{what} (not priced)"),
                quantity: b.requests as f64,
                unit: "requests",
                dollars: 0.0,
                fixed,
            }),
        }
    }
}

fn main() {
    let o = options();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(o));
}

async fn run(o: Options) {
    let t0 = Instant::now();
    let progress = |msg: String| eprintln!("cost [{:>5.0} s] {msg}", t0.elapsed().as_secs_f64());
    progress("provisioning the emulator's queues, topics and tables".into());
    // Visibility timeouts must be longer than the longest batching window (30 s) too: a
    // shorter one would hand a collecting batch its own messages again.
    let stack = Stack::with_visibility("cost", VISIBILITY_S).await;
    let healthy = Site::start(o.latency).await;
    let flappy = Site::start(o.latency).await;
    let hook = WebhookReceiver::start().await;

    let sizes = tenant_sizes(o.targets);
    progress(format!(
        "creating {} one-minute HTTP targets in {} tenants (sizes {:?}{}), {} flapping",
        o.targets,
        sizes.len(),
        &sizes[..sizes.len().min(8)],
        if sizes.len() > 8 { ", …" } else { "" },
        o.flapping
    ));
    // Flapping targets go to the larger tenants, which have a webhook channel.
    let mut flapping_left = o.flapping;
    let mut n = 0;
    for (t, size) in sizes.iter().enumerate() {
        let tenant = tenant_id(t);
        let large = t < 5;
        if large {
            stack
                .put_channel_in(
                    &tenant,
                    json!({"id": "hook", "webhook": {"url": hook.url()}}),
                )
                .await;
        }
        for i in 0..*size {
            let flaps = flapping_left > 0 && (large || t == sizes.len() - 1) && i % 7 == 0;
            if flaps {
                flapping_left -= 1;
            }
            let site = if flaps { &flappy } else { &healthy };
            stack
                .put_target_in(
                    &tenant,
                    json!({
                        "id": format!("t{i:05}"), "http": {"url": site.url(n)}, "interval": "1m",
                        "timeout": "5s", "conditions": ["[STATUS] == 200"],
                        "failure_threshold": 2, "success_threshold": 2,
                    }),
                )
                .await;
            n += 1;
        }
    }
    let flapping = o.flapping - flapping_left;

    let runner = deployed_runner(&stack).await;
    let mut measured: BTreeMap<&'static str, CallSnapshot> = BTreeMap::new();
    let mut polling = CallSnapshot::default();
    // Per function, each invocation's (wall time, wall time with the emulator's waits replaced
    // by AWS's latencies).
    let mut durations: BTreeMap<&'static str, Vec<(Duration, Duration)>> = BTreeMap::new();
    let mut jobs = 0;
    let mut probes = 0;
    let mut seen_invocations = 0;
    let total = o.warmup + o.ticks;
    let flush_every = resources::DRAINS
        .iter()
        .find(|d| d.function == resources::function::RECORDER)
        .map_or(1, |d| d.default_minutes as usize)
        .max(1);
    let mut flushes = 0;
    // Results carry the real time they were probed at: the history hours the run wrote.
    let first_hour = hour_of(chrono::Utc::now());
    for tick in 0..total {
        // Down for 4 minutes, up for 4: with thresholds of 2, one transition every 4 minutes.
        flappy.down.store((tick / 4) % 2 == 1, Ordering::SeqCst);
        let before = stack.snapshot();
        let started = Instant::now();
        let (out, tick_waits) = time_emulator_waits(runner.tick(minute(tick as i64))).await;
        let out = out.expect("scheduler tick");
        let tick_time = started.elapsed();
        runner.wait_idle(IDLE).await.expect("the pipeline drains");
        // The recorder's schedule: at the end of the warm-up (its messages are not measured),
        // then every `flush_every` measured minutes, and once at the end for the rest.
        let measured_minute = (tick + 1).checked_sub(o.warmup);
        if measured_minute == Some(0)
            || measured_minute.is_some_and(|m| m > 0 && m % flush_every == 0)
            || tick + 1 == total
        {
            let drained = runner.flush_history().await.expect("the recorder drains");
            if drained.left > 0 {
                progress(format!("  the recorder left {} message(s)", drained.left));
            }
            if measured_minute.is_some_and(|m| m > 0) {
                flushes += 1;
            }
        }
        let after = stack.snapshot();
        let invocations = runner.invocations();
        let new = &invocations[seen_invocations..];
        seen_invocations = invocations.len();
        let failed = new.iter().filter(|i| i.error.is_some()).count();
        if let Some(i) = new.iter().find(|i| i.error.is_some()) {
            progress(format!(
                "  a {} invocation failed (its batch is retried after the visibility timeout): {}",
                i.function,
                i.error.as_deref().unwrap_or_default()
            ));
        }
        let warm = tick >= o.warmup;
        progress(format!(
            "minute {}/{total}{}: {} targets in {} jobs, {} invocations{}, {:.1} s",
            tick + 1,
            if warm { "" } else { " (warm-up)" },
            out.targets,
            out.jobs,
            new.len() + 1,
            if failed > 0 {
                format!(" ({failed} failed and retried)")
            } else {
                String::new()
            },
            started.elapsed().as_secs_f64()
        ));
        if !warm {
            continue;
        }
        jobs += out.jobs;
        probes += out.probes;
        for (name, snap) in &after {
            let delta = snap.since(&before[name]);
            if *name == "runner" {
                polling.absorb(&delta);
            } else {
                measured.entry(name).or_default().absorb(&delta);
            }
        }
        durations
            .entry("scheduler")
            .or_default()
            .push((tick_time, modelled(tick_time, &tick_waits)));
        for i in new {
            durations
                .entry(i.function)
                .or_default()
                .push((i.duration, modelled(i.duration, &i.emulator)));
        }
    }
    runner.stop().await;
    progress(format!(
        "the recorder ran {flushes} time(s) in the {} measured minutes (every {flush_every})",
        o.ticks
    ));
    let notifications = hook.received().len();
    let last_hour = hour_of(chrono::Utc::now());
    let hours = ((last_hour - first_hour).num_hours() + 1).max(1) as f64;
    progress(format!(
        "rolling up the {hours} history hour(s) written, as the recorder does an hour after it ends"
    ));
    let rollup = measure_rollup(&stack, last_hour).await;
    let full_read = measure_schedule_full_read(&stack).await;

    // Price it. Lambda durations are priced with the emulator's waits replaced by AWS's
    // latencies; what the waits added as measured is kept apart.
    let mut terms = Vec::new();
    let mut emulator_waits = Vec::new();
    for function in FUNCTIONS {
        let d = durations.get(function).cloned().unwrap_or_default();
        let invocations = d.len() as f64;
        let wall: Vec<Duration> = d.iter().map(|(wall, _)| *wall).collect();
        let model: Vec<Duration> = d.iter().map(|(_, model)| *model).collect();
        terms.push(Term {
            function,
            service: "Lambda",
            what: "requests".into(),
            quantity: invocations,
            unit: "requests",
            dollars: invocations * LAMBDA_PER_REQUEST,
            fixed: function == "scheduler",
        });
        let gb_s = billed_seconds(&model) * memory_gb(function);
        terms.push(Term {
            function,
            service: "Lambda",
            what: format!("duration at {} MB", (memory_gb(function) * 1024.0) as u32),
            quantity: gb_s,
            unit: "GB-s",
            dollars: gb_s * LAMBDA_PER_GB_S,
            fixed: false,
        });
        let extra = billed_seconds(&wall) * memory_gb(function) - gb_s;
        emulator_waits.push(waits_term(function, extra));
        if let Some(snap) = measured.get(function) {
            aws_terms(function, snap, &mut terms);
        }
    }
    aws_terms("pollers", &polling, &mut terms);
    // The rollup read `total` minutes of blocks and wrote each target's slots of `hours`
    // hours: reads and its duration scale with minutes of blocks, writes with hours.
    let mut rolled = Vec::new();
    aws_terms("rollup", &rollup.calls, &mut rolled);
    for mut t in rolled {
        let scale = if t.unit == "WRU" {
            o.ticks as f64 / (hours * 60.0)
        } else {
            o.ticks as f64 / total as f64
        };
        t.quantity *= scale;
        t.dollars *= scale;
        terms.push(t);
    }
    let mut full = Vec::new();
    aws_terms("scheduler", &full_read, &mut full);
    for mut t in full {
        let scale = o.ticks as f64 / f64::from(SCHEDULE_FULL_READ_EVERY);
        t.what = format!(
            "{}, a full reread every {SCHEDULE_FULL_READ_EVERY} ticks",
            t.what
        );
        t.quantity *= scale;
        t.dollars *= scale;
        terms.push(t);
    }
    let rollup_gb_s =
        |d: Duration| billed_seconds(&[d]) * memory_gb("recorder") * o.ticks as f64 / total as f64;
    let gb_s = rollup_gb_s(modelled(rollup.duration, &rollup.waits));
    terms.push(Term {
        function: "rollup",
        service: "Lambda",
        what: "duration at the recorder's memory".into(),
        quantity: gb_s,
        unit: "GB-s",
        dollars: gb_s * LAMBDA_PER_GB_S,
        fixed: false,
    });
    let extra = rollup_gb_s(rollup.duration) - gb_s;
    emulator_waits.push(waits_term("rollup", extra));
    let idle_receives = IDLE_RECEIVES_PER_QUEUE_MINUTE * SOURCES.len() as f64 * o.ticks as f64;
    terms.push(Term {
        function: "pollers",
        service: "SQS",
        what: "ReceiveMessage (empty, modelled)".into(),
        quantity: idle_receives,
        unit: "requests",
        dollars: idle_receives * SQS_PER_REQUEST,
        fixed: true,
    });

    let minutes = o.ticks as f64;
    let targets = o.targets as f64;
    // $ per target-month at `at` targets: per-target terms as measured per target, fixed ones
    // shared by `at` targets.
    let per_target_month = |t: &Term, at: f64| {
        let per_minute = t.dollars / minutes;
        if t.fixed {
            per_minute * TICKS_PER_MONTH / at
        } else {
            per_minute * TICKS_PER_MONTH / targets
        }
    };

    println!();
    println!(
        "=== netmon on the emulator: {} one-minute targets in {} tenants, {} minutes measured after {} of warm-up ===",
        o.targets,
        sizes.len(),
        o.ticks,
        o.warmup
    );
    println!(
        "{probes} probes in {jobs} jobs ({:.1} probes a job); {flapping} targets flap (down 4 min, up 4 min: \
         their incident transitions and {notifications} webhook notifications are in the bill)",
        probes as f64 / jobs.max(1) as f64
    );
    println!(
        "targets answer after {} ms (loopback plus a sleep standing in for a remote site)",
        o.latency.as_millis()
    );
    println!();
    println!(
        "{:<10} {:<8} {:<38} {:>14} {:<8} {:>12} {:>14}",
        "function", "service", "what", "quantity", "unit", "$/month", "$/target-month"
    );
    let row = |t: &Term| {
        println!(
            "{:<10} {:<8} {:<38} {:>14.1} {:<8} {:>12.4} {:>14.7}{}",
            t.function,
            t.service,
            t.what,
            t.quantity + 0.0,
            t.unit,
            // `+ 0.0`: no "-0.0" for an empty term.
            t.dollars / minutes * TICKS_PER_MONTH + 0.0,
            per_target_month(t, targets) + 0.0,
            if t.fixed { "  (fixed)" } else { "" }
        );
    };
    terms.iter().for_each(row);
    println!();
    println!(
        "Lambda durations above: each handler's wall time, with the time it waited on the emulator \
         (moto, one request at a time) replaced by AWS's latency for the same rounds of requests \
         (DynamoDB 10 ms, SQS 20 ms, SNS 40 ms a round). What the emulator's waits added as \
         measured, not in the totals below:"
    );
    emulator_waits.iter().for_each(row);
    println!();
    let group = |key: &dyn Fn(&Term) -> &str| {
        let mut sums: BTreeMap<String, f64> = BTreeMap::new();
        for t in &terms {
            *sums.entry(key(t).to_owned()).or_default() += per_target_month(t, targets);
        }
        sums
    };
    println!("per service, $/target-month at {} targets:", o.targets);
    for (k, v) in group(&|t| t.service) {
        println!("  {k:<10} {v:.6}");
    }
    println!("per function, $/target-month at {} targets:", o.targets);
    for (k, v) in group(&|t| t.function) {
        println!("  {k:<10} {v:.6}");
    }
    println!();
    println!(
        "Notes: DynamoDB units are computed from the items sent and returned (the emulator fakes \
         consumed capacity); UpdateItem and DeleteItem are sized from the request (key and values \
         set), a lower bound. Lambda GB-s are in-process handler wall times on this machine \
         ({} cores), the emulator's waits replaced as said above: a proxy for Lambda's. Fixed terms (paid once a minute \
         whatever the target count): the scheduler's invocation, its tick claim (PutItem) and \
         index reads (the outbox sweep), and Lambda's idle SQS long polls (modelled: {} \
         receives a minute per event-source queue; recorder-in has none, the recorder drains it \
         every {flush_every} minutes and its receives are measured). Hourly rollups (function `rollup`): every tenant-hour \
         the run wrote is rolled up once it has settled, as the recorder does; its reads and \
         duration are scaled from the minutes of blocks read to a full hour, its writes (a slot \
         per target-hour) counted once per hour. Everything else is taken as per target, scaled linearly \
         from this tenant mix. Event deliveries from SNS to SQS are free; the runner's queue-depth \
         checks are not billed.",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        IDLE_RECEIVES_PER_QUEUE_MINUTE
    );
    println!();
    let at = |n: f64| terms.iter().map(|t| per_target_month(t, n)).sum::<f64>();
    let waits = |n: f64| {
        emulator_waits
            .iter()
            .map(|t| per_target_month(t, n))
            .sum::<f64>()
    };
    for n in [1_000.0, 10_000.0, 100_000.0] {
        println!(
            "{:>7} targets: ${:.5} per target-month, ${:.2} a month (with the emulator's waits as \
             measured: ${:.5})",
            n as u64,
            at(n),
            at(n) * n,
            at(n) + waits(n)
        );
    }
    println!(
        "cost per target-month at 60 s, 10000 targets: ${}",
        significant(at(10_000.0))
    );
}

/// `x` with 4 significant digits (`0.02013`).
fn significant(x: f64) -> String {
    if x <= 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (3 - x.log10().floor() as i32).max(0) as usize;
    format!("{x:.decimals$}")
}
