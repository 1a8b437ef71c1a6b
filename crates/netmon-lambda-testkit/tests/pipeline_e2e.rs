//! The serverless pipeline end to end on the emulator: every function as its binary wires it,
//! fed by the local event-source runner (batch sizes, windows, visibility timeouts, partial batch
//! failures, redrive), with every AWS call and DynamoDB item write counted per function.
//!
//! `cargo nextest run -p netmon-aws --test pipeline_e2e --no-capture` prints the figures.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use netmon_core::events::{Envelope, Event, ProbeBatch};
use netmon_core::incident::Status;
use netmon_core::ports::{StateStore, TargetStore};
use netmon_core::result::Outcome;
use netmon_core::{TargetId, TenantId};
use netmon_lambda::functions::scheduler::TickOutput;
use netmon_lambda_testkit::faults::FaultInjector;
use netmon_lambda_testkit::metrics::CallSnapshot;
use netmon_lambda_testkit::runner::RunningRunner;
use netmon_testkit::servers::{Mode, TargetServer, WebhookReceiver};
use netmon_testkit::suites::fixtures;
use serde_json::json;
use support::{Stack, eventually, logs, minute};

/// How long a round may take to drain: more than one invocation's 30 s budget, since an
/// invocation that the injected faults keep in SDK backoff until its timeout is retried, and
/// the round must see that retry through (a round as long as one budget failed under load).
const IDLE: Duration = Duration::from_secs(75);

fn tenant() -> TenantId {
    TenantId::default_tenant()
}

fn web(url: &str) -> serde_json::Value {
    json!({
        "id": "web", "name": "Web", "http": {"url": url}, "interval": "1m", "timeout": "2s",
        "conditions": ["[STATUS] == 200"], "failure_threshold": 2, "success_threshold": 2,
    })
}

/// One scheduler tick, then everything it caused, to the last webhook.
async fn round(
    stack: &Stack,
    runner: &RunningRunner,
    n: i64,
) -> (TickOutput, BTreeMap<&'static str, CallSnapshot>) {
    let before = stack.snapshot();
    let tick = runner.tick(minute(n)).await.expect("tick");
    runner.wait_idle(IDLE).await.expect("pipeline drains");
    let after = stack.snapshot();
    let delta = after
        .iter()
        .map(|(k, s)| (*k, s.since(&before[k])))
        .collect();
    (tick, delta)
}

async fn status(stack: &Stack) -> Option<(Status, bool)> {
    stack
        .store
        .load_state(&tenant(), &TargetId::parse("web").unwrap())
        .await
        .expect("load state")
        .map(|v| (v.value.status, v.value.incident.is_some()))
}

fn writes(delta: &BTreeMap<&'static str, CallSnapshot>, functions: &[&str]) -> u64 {
    functions
        .iter()
        .map(|f| delta[f].dynamodb_item_writes)
        .sum()
}

fn calls(delta: &BTreeMap<&'static str, CallSnapshot>, functions: &[&str]) -> u64 {
    functions.iter().map(|f| delta[f].total_calls()).sum()
}

/// Healthy targets beside `web`, so jobs carry many probes as in production.
const STEADY_TARGETS: usize = 19;

/// healthy → down → `incident.opened` once → healthy → `incident.resolved` once, for `web` among
/// 20 targets; state, incident records, drained queues and empty DLQs checked; every event the
/// functions published validated against its schema; calls and writes reported per probe and
/// per transition.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn healthy_down_healthy_notifies_each_transition_once_and_counts_every_call() {
    let stack = Stack::new("e2e").await;
    let target = TargetServer::start().await;
    let healthy = TargetServer::start().await;
    let hook = WebhookReceiver::start().await;
    stack.put_target(web(&target.url())).await;
    for i in 0..STEADY_TARGETS {
        stack
            .put_target(json!({
                "id": format!("steady-{i:02}"), "http": {"url": format!("{}?{i}", healthy.url())},
                "interval": "1m", "timeout": "2s",
            }))
            .await;
    }
    stack.put_webhook("hook", &hook.url()).await;
    let tap = stack.tap().await;
    let runner = stack.runner(&[], false).await;

    use Kind::*;
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Kind {
        /// Counters still moving (first results, failures or successes below threshold).
        Counting,
        /// Every target's state unchanged.
        Steady,
        Opens,
        Resolves,
    }
    // (web's mode, web's status and open incident after the round, kind of round)
    let plan = [
        (Mode::Ok, Status::Up, false, Counting),
        (Mode::Ok, Status::Up, false, Counting),
        (Mode::Ok, Status::Up, false, Steady),
        (Mode::Ok, Status::Up, false, Steady),
        (Mode::Ok, Status::Up, false, Steady),
        (Mode::Error, Status::Up, false, Counting),
        (Mode::Error, Status::Down, true, Opens),
        (Mode::Error, Status::Down, true, Steady),
        (Mode::Ok, Status::Down, true, Counting),
        (Mode::Ok, Status::Up, false, Resolves),
        (Mode::Ok, Status::Up, false, Steady),
    ];
    let targets = 1 + STEADY_TARGETS;
    let mut rounds = Vec::new();
    let mut jobs = 0;
    let mut round_jobs = Vec::new();
    for (n, (mode, want_status, want_open, kind)) in plan.iter().enumerate() {
        target.set_mode(*mode);
        let (tick, delta) = round(&stack, &runner, n as i64).await;
        assert_eq!(
            (tick.targets, tick.probes),
            (targets, targets),
            "round {n}: {tick:?}"
        );
        // Spread over the minute: at most one job per 10 s slot for 20 targets.
        assert!((1..=6).contains(&tick.jobs), "round {n}: {tick:?}");
        jobs += tick.jobs;
        round_jobs.push(tick.jobs);
        assert_eq!(
            status(&stack).await,
            Some((*want_status, *want_open)),
            "round {n} ({kind:?}); invocations: {:#?}",
            runner.invocations()
        );
        let notified = (
            hook.of_type("incident.opened").len(),
            hook.of_type("incident.resolved").len(),
        );
        let want = match n {
            0..=5 => (0, 0),
            6..=8 => (1, 0),
            _ => (1, 1),
        };
        assert_eq!(notified, want, "round {n}: notifications so far");
        rounds.push((*kind, delta));
    }
    // The recorder's schedule fires once for the whole run: every job's results in blocks
    // merged per tenant group, read back once each.
    let before_flush = stack.snapshot();
    let flushed = stack.flush_history(&runner).await;
    let flush: BTreeMap<&'static str, CallSnapshot> = stack
        .snapshot()
        .iter()
        .map(|(k, s)| (*k, s.since(&before_flush[k])))
        .collect();
    runner.stop().await;
    assert_eq!(flushed.results, plan.len() * targets, "{flushed:?}");
    let history = netmon_aws::dynamo::history::DynamoHistoryStore::new(
        stack.harness.dynamodb.clone(),
        stack.var("NETMON_HISTORY_TABLE"),
        std::sync::Arc::new(netmon_app::clock::SystemClock),
    );
    let web_history = netmon_core::ports::HistoryStore::results_since(
        &history,
        &tenant(),
        &TargetId::parse("web").unwrap(),
        minute(-60),
        1_000,
    )
    .await
    .expect("web's history");
    assert_eq!(web_history.len(), plan.len(), "one result per round");
    assert_eq!(
        target.hits(),
        plan.len() as u64,
        "web probed once per round"
    );

    // Exactly one webhook per transition, with the stable event ids and the same incident.
    let opened = hook.of_type("incident.opened");
    let resolved = hook.of_type("incident.resolved");
    assert_eq!(hook.received().len(), 2, "{:#?}", hook.received());
    let incident_id = opened[0]["payload"]["incident_id"].as_str().unwrap();
    assert_eq!(resolved[0]["payload"]["incident_id"], incident_id);
    assert_eq!(opened[0]["id"], format!("default:{incident_id}:opened"));
    for r in hook.received() {
        let id = r.headers["x-netmon-event-id"].to_str().unwrap().to_owned();
        assert_eq!(r.body["id"], id.as_str());
    }

    // Incident state in DynamoDB matches what was notified.
    let incidents = stack.store.list_incidents(&tenant(), 10).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert_eq!(incidents[0].incident_id, incident_id);
    assert_eq!(
        resolved[0]["payload"]["resolved_at"],
        json!(incidents[0].resolved_at.expect("resolved"))
    );
    let states = stack.store.list_states(&tenant()).await.unwrap();
    assert_eq!(states.len(), targets);
    assert!(
        states
            .iter()
            .all(|(_, s)| s.value.status == Status::Up && s.value.incident.is_none()),
        "{states:#?}"
    );
    assert!(
        netmon_core::ports::Outbox::pending(&stack.store, 10)
            .await
            .unwrap()
            .is_empty(),
        "every outbox event published"
    );

    stack.assert_drained().await;

    // Every event published (one probe batch per job, two incident events) matches its schema.
    // A message holds one envelope, or an array of the probe batches of one prober message.
    let published: Vec<Envelope> = stack
        .drain(&tap)
        .await
        .iter()
        .flat_map(|b| {
            if b.starts_with('[') {
                serde_json::from_str::<Vec<Envelope>>(b).expect("published envelopes")
            } else {
                vec![serde_json::from_str(b).expect("published envelope")]
            }
        })
        .collect();
    let count = |t: &str| {
        published
            .iter()
            .filter(|e| e.event_type().as_str() == t)
            .count()
    };
    assert_eq!(count("probe.completed"), jobs);
    assert_eq!(
        (count("incident.opened"), count("incident.resolved")),
        (1, 1)
    );
    netmon_testkit::contracts::assert_valid_all(&published);

    // The figures.
    let functions = support::FUNCTIONS;
    let probe_path = ["prober", "alerter", "notifier"];
    let of = |kind: Kind| {
        rounds
            .iter()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, d)| d)
    };
    let probes = (plan.len() * targets) as f64;
    let whole: u64 = rounds.iter().map(|(_, d)| calls(d, &functions)).sum();
    println!(
        "\n=== netmon pipeline on the emulator: {} rounds x {targets} targets = {probes} probes in {jobs} jobs, 1 incident ===",
        plan.len()
    );
    println!(
        "AWS calls per probe, all five functions, whole run: {:.2}",
        whole as f64 / probes
    );
    for (kind, label) in [
        (Steady, "steady state"),
        (Counting, "counting"),
        (Opens, "incident opened"),
        (Resolves, "incident resolved"),
    ] {
        let n = of(kind).count() as f64;
        let per_round = |f: &str, w: bool| {
            of(kind)
                .map(|d| {
                    if w {
                        d[f].dynamodb_item_writes
                    } else {
                        d[f].total_calls()
                    }
                })
                .sum::<u64>() as f64
                / n
        };
        let detail: Vec<String> = functions
            .iter()
            .map(|f| format!("{f} {}/{}", per_round(f, false), per_round(f, true)))
            .collect();
        println!(
            "{label:<17} per round of {targets} probes: {:.1} calls ({:.2}/probe), {:.1} DynamoDB item writes [calls/writes: {}]",
            of(kind).map(|d| calls(d, &functions)).sum::<u64>() as f64 / n,
            of(kind).map(|d| calls(d, &functions)).sum::<u64>() as f64 / n / targets as f64,
            of(kind).map(|d| writes(d, &functions)).sum::<u64>() as f64 / n,
            detail.join(", ")
        );
    }
    let steady_probe_path_writes: u64 = of(Steady).map(|d| writes(d, &probe_path)).sum();
    let steady_rounds = of(Steady).count() as f64;
    println!(
        "steady state, DynamoDB item writes per probe on the probe path (prober, alerter, notifier): {}",
        steady_probe_path_writes as f64 / (steady_rounds * targets as f64)
    );
    println!(
        "steady state, fixed costs: scheduler {} write per tick (its claim); recorder, one run for all {} rounds: {} messages of {jobs} jobs in {} group write(s), {} DynamoDB item writes",
        of(Steady)
            .map(|d| d["scheduler"].dynamodb_item_writes)
            .sum::<u64>() as f64
            / steady_rounds,
        plan.len(),
        flushed.received,
        flushed.groups,
        flush["recorder"].dynamodb_item_writes,
    );
    for kind in [Opens, Resolves] {
        let d = of(kind).next().expect("a transition round");
        let base = of(Steady).next().expect("a steady round");
        println!(
            "{kind:?}: writes beyond a steady round: alerter {} ({} in its transaction), notifier {} (claim, completion, outcome record; one channel)",
            d["alerter"].dynamodb_item_writes - base["alerter"].dynamodb_item_writes,
            d["alerter"].dynamodb_transactional_item_writes,
            d["notifier"].dynamodb_item_writes,
        );
    }
    let total = |f: &str| {
        rounds
            .iter()
            .fold(CallSnapshot::default(), |sum, (_, d)| add(&sum, &d[f]))
    };
    for f in functions {
        // The recorder ran once, after the rounds.
        let whole = if f == "recorder" {
            add(&total(f), &flush[f])
        } else {
            total(f)
        };
        print!("-- {f}, whole run: {whole}");
    }
    let polling = stack.counters["runner"].snapshot();
    println!(
        "-- event-source polling by the runner (Lambda's own pollers in AWS): ReceiveMessage {}, DeleteMessageBatch {}",
        polling.calls("SQS", "ReceiveMessage"),
        polling.calls("SQS", "DeleteMessageBatch")
    );

    assert_eq!(
        steady_probe_path_writes, 0,
        "no DynamoDB write per probe in the steady state"
    );
    for ((kind, d), jobs) in rounds.iter().zip(&round_jobs) {
        // The alerter publishes what it committed and never reads the outbox index: its
        // Queries are its job's group of check states, once per batch (one batch per job),
        // and the tenant's maintenance windows, only for a batch that changes something.
        let queries = d["alerter"].calls("DynamoDB", "Query");
        if *kind == Steady {
            assert_eq!(queries, *jobs as u64, "{d:?}");
            assert_eq!(d["alerter"].calls("DynamoDB", "BatchGetItem"), 0, "{d:?}");
        } else {
            assert!(
                (*jobs as u64..=2 * *jobs as u64).contains(&queries),
                "{d:?}"
            );
        }
        match kind {
            // Nothing on the probe path writes while nothing changes.
            Steady => {
                assert_eq!(d["notifier"].total_calls(), 0, "{d:?}");
                assert_eq!(d["scheduler"].dynamodb_item_writes, 1, "the tick claim");
            }
            // Claim, complete and record the outcome per channel; a resolution first tries to
            // claim its opened event (refused: it went out), the price of "opened before
            // resolved".
            Opens => {
                assert!(d["alerter"].dynamodb_transactional_item_writes > 0, "{d:?}");
                assert_eq!(d["notifier"].dynamodb_item_writes, 3, "{d:?}");
            }
            Resolves => {
                assert!(d["alerter"].dynamodb_transactional_item_writes > 0, "{d:?}");
                assert_eq!(d["notifier"].dynamodb_item_writes, 4, "{d:?}");
                assert_eq!(d["notifier"].total_errors(), 1, "{d:?}");
            }
            Counting => {}
        }
    }
}

fn add(a: &CallSnapshot, b: &CallSnapshot) -> CallSnapshot {
    let mut sum = a.clone();
    for (k, s) in &b.operations {
        let e = sum.operations.entry(k.clone()).or_default();
        e.calls += s.calls;
        e.attempts += s.attempts;
        e.errors += s.errors;
    }
    sum.dynamodb_item_writes += b.dynamodb_item_writes;
    sum.dynamodb_transactional_item_writes += b.dynamodb_transactional_item_writes;
    sum
}

/// Every SQS message is handed to its function twice (the second time with a higher receive
/// count), and the schedule fires twice for one minute: still exactly one notification per
/// incident transition, and the state is right.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_message_delivered_twice_still_notifies_each_transition_once() {
    let stack = Stack::new("twice").await;
    let target = TargetServer::start().await;
    let hook = WebhookReceiver::start().await;
    stack.put_target(web(&target.url())).await;
    stack.put_webhook("hook", &hook.url()).await;
    let runner = stack.runner(&[], true).await;

    for (n, mode) in [
        Mode::Ok,
        Mode::Ok,
        Mode::Error,
        Mode::Error,
        Mode::Error,
        Mode::Ok,
        Mode::Ok,
        Mode::Ok,
    ]
    .into_iter()
    .enumerate()
    {
        target.set_mode(mode);
        let tick = runner.tick(minute(100 + n as i64)).await.expect("tick");
        assert_eq!(tick.jobs, 1);
        let again = runner.tick(minute(100 + n as i64)).await.expect("tick");
        assert!(again.duplicate && again.jobs == 0, "{again:?}");
        runner.wait_idle(IDLE).await.expect("drains");
    }
    let invocations = runner.invocations();
    // The recorder's schedule fires twice: the second run finds nothing left.
    let first = stack.flush_history(&runner).await;
    assert_eq!(first.results, 8, "{first:?}");
    let second = stack.flush_history(&runner).await;
    assert_eq!(second.received, 0, "{second:?}");
    runner.stop().await;

    // Each batch really went in twice.
    for f in ["prober", "alerter", "notifier"] {
        let mine: Vec<_> = invocations.iter().filter(|i| i.function == f).collect();
        assert!(
            mine.len() >= 2 && mine.len() % 2 == 0,
            "{f}: {}",
            mine.len()
        );
    }
    assert_eq!(
        hook.of_type("incident.opened").len(),
        1,
        "{:#?}",
        hook.received()
    );
    assert_eq!(
        hook.of_type("incident.resolved").len(),
        1,
        "{:#?}",
        hook.received()
    );
    assert_eq!(hook.received().len(), 2);
    let incidents = stack.store.list_incidents(&tenant(), 10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    assert!(incidents[0].resolved_at.is_some());
    assert_eq!(status(&stack).await, Some((Status::Up, false)));
    stack.assert_drained().await;
}

/// A quarter of the functions' AWS calls throttled or answered with a 500 after they took
/// effect (SQS, SNS and DynamoDB alike; the SDK retries, what is left fails a handler or a tick
/// and is redelivered or retried): the receiver still gets each transition, opened first, and
/// each under one event id (resends after a lost answer reuse it, so receivers dedupe).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn aws_faults_on_a_quarter_of_calls_still_deliver_each_transition_once() {
    let log = logs();
    let faults = FaultInjector::new(0x5eed_0010, 250);
    let stack = Stack::with_faults("faults", &faults).await;
    let target = TargetServer::start().await;
    let hook = WebhookReceiver::start().await;
    stack.put_target(web(&target.url())).await;
    stack.put_webhook("hook", &hook.url()).await;
    let runner = stack.runner(&[], false).await;

    // Four failed minutes for a threshold of two: a redelivered job skips its probes (its slot
    // lies in the past here), and the rest must still hold two adjacent failures.
    let modes = [
        Mode::Ok,
        Mode::Ok,
        Mode::Error,
        Mode::Error,
        Mode::Error,
        Mode::Error,
        Mode::Ok,
        Mode::Ok,
        Mode::Ok,
        Mode::Ok,
    ];
    for (n, mode) in modes.into_iter().enumerate() {
        target.set_mode(mode);
        // EventBridge retries a failed asynchronous invocation; so does this.
        let mut attempts = 0;
        while let Err(e) = runner.tick(minute(20 + n as i64)).await {
            attempts += 1;
            assert!(attempts < 10, "tick kept failing: {e}");
        }
        if let Err(e) = runner.wait_idle(IDLE).await {
            for l in log.lines() {
                if l["level"] != "INFO" {
                    eprintln!("{l}");
                }
            }
            panic!("round {n}: {e}");
        }
    }
    // Events an alerter committed but could not publish are swept by later ticks.
    eventually(
        Duration::from_secs(60),
        "opened and resolved delivered",
        || async {
            let _ = runner.tick(minute(40)).await;
            let _ = runner.wait_idle(IDLE).await;
            !hook.of_type("incident.resolved").is_empty()
        },
    )
    .await;
    runner.stop().await;

    let (attempts, throttled, lost) = faults.counts();
    assert!(
        throttled > 0 && lost > 0,
        "{attempts} attempts, {throttled} throttled, {lost} lost"
    );
    let received = hook.received();
    let ids: Vec<(String, String)> = received
        .iter()
        .map(|r| {
            (
                r.body["type"].as_str().unwrap_or_default().to_owned(),
                r.body["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let distinct: std::collections::BTreeSet<&(String, String)> = ids.iter().collect();
    let kinds: Vec<&str> = distinct.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(kinds, ["incident.opened", "incident.resolved"], "{ids:#?}");
    let first = |kind: &str| ids.iter().position(|(k, _)| k == kind);
    assert!(
        first("incident.opened") < first("incident.resolved"),
        "{ids:#?}"
    );
    let incidents = stack.store.list_incidents(&tenant(), 10).await.unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:#?}");
    assert!(incidents[0].resolved_at.is_some());
    println!(
        "faults: {attempts} function attempts, {throttled} throttled, {lost} answers lost; {} webhook requests for 2 events",
        received.len()
    );
}

fn batch_of(results: Vec<netmon_core::result::ProbeResult>, id: &str) -> String {
    serde_json::to_string(&Envelope::with_id(
        id.to_owned(),
        Event::ProbeCompleted(ProbeBatch {
            job_id: id.to_owned(),
            location: support::LOCATION.into(),
            results,
            group_level: None,
            group_size: None,
            targets: Vec::new(),
        }),
        tenant(),
        "prober",
        Utc::now(),
    ))
    .unwrap()
}

fn result_at(target: &str, secs: i64, outcome: Outcome) -> netmon_core::result::ProbeResult {
    // Fixed once per run: a test that crosses a minute boundary must not reorder its results.
    static T0: std::sync::OnceLock<chrono::DateTime<Utc>> = std::sync::OnceLock::new();
    let t0 = *T0.get_or_init(|| {
        netmon_core::schedule::floor_minute(Utc::now()) - chrono::Duration::hours(1)
    });
    fixtures::result(
        &tenant(),
        target,
        support::LOCATION,
        t0 + chrono::Duration::seconds(secs),
        outcome,
    )
}

/// Results of one target arrive out of order and late, some twice: the incident opens once
/// and resolves once, and the state never moves back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn out_of_order_results_never_regress_incident_state() {
    let stack = Stack::new("order").await;
    let hook = WebhookReceiver::start().await;
    stack
        .put_target(web("http://127.0.0.1:9/never-probed"))
        .await;
    stack.put_webhook("hook", &hook.url()).await;
    let runner = stack.runner(&["alerter", "notifier"], false).await;
    let (up, down) = (Outcome::Up, Outcome::Down);
    // (results delivered, each in its own message; expected status, open incident)
    type Step = (Vec<(i64, Outcome)>, Status, bool);
    let steps: Vec<Step> = vec![
        // One failure: not down yet (threshold 2).
        (vec![(50, down)], Status::Up, false),
        (vec![(20, up)], Status::Up, false), // older: ignored (else it would reset the count)
        (vec![(60, down)], Status::Down, true), // second failure opens
        (vec![(40, down), (30, down), (10, down)], Status::Down, true),
        (vec![(80, up)], Status::Down, true),
        (vec![(70, down)], Status::Down, true), // older than the success: ignored
        (vec![(90, up)], Status::Up, false),    // second success resolves
        (
            vec![(60, down), (75, down), (85, down), (50, down)],
            Status::Up,
            false,
        ),
        (vec![(90, up), (80, up)], Status::Up, false),
    ];
    let mut n = 0;
    for (i, (results, want, open)) in steps.iter().enumerate() {
        let bodies: Vec<String> = results
            .iter()
            .map(|(s, o)| {
                n += 1;
                batch_of(vec![result_at("web", *s, *o)], &format!("ooo-{n}"))
            })
            .collect();
        stack.send("NETMON_ALERTER_IN_QUEUE_URL", &bodies).await;
        runner.wait_idle(IDLE).await.expect("drains");
        assert_eq!(
            status(&stack).await,
            Some((*want, *open)),
            "after step {i}: {results:?}; invocations: {:#?}",
            runner.invocations()
        );
    }
    runner.stop().await;
    assert_eq!(
        hook.of_type("incident.opened").len(),
        1,
        "{:#?}",
        hook.received()
    );
    assert_eq!(hook.of_type("incident.resolved").len(), 1);
    let incidents = stack.store.list_incidents(&tenant(), 10).await.unwrap();
    assert_eq!(incidents.len(), 1);
    // Opened by the result at +60 s (failing since +50 s), resolved by the one at +90 s.
    assert_eq!(
        incidents[0].opened_at,
        result_at("web", 60, down).started_at
    );
    assert_eq!(
        incidents[0].cause.failing_since,
        result_at("web", 50, down).started_at
    );
    assert_eq!(
        incidents[0].resolved_at,
        Some(result_at("web", 90, up).started_at)
    );
    stack.assert_drained().await;
}

/// Malformed JSON, an unknown event type, an oversized body and a valid message for a deleted
/// target, in one batch with valid messages: the valid ones take effect at once; the deleted
/// target's is acked with no effect; the three poison messages are reported as failed on
/// every receive (reason logged with the message id), reach the DLQ after maxReceiveCount, and
/// nothing panics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poison_messages_reach_the_dlq_and_spare_their_batch() {
    let logs = logs();
    let stack = Stack::with_visibility("poison", support::REDRIVE_VISIBILITY_S).await;
    stack
        .put_target(web("http://127.0.0.1:9/never-probed"))
        .await;
    stack
        .put_target(json!({"id": "gone", "http": {"url": "http://127.0.0.1:9/"}}))
        .await;
    assert!(
        stack
            .store
            .delete_target(&tenant(), &TargetId::parse("gone").unwrap())
            .await
            .unwrap()
    );
    let mut unknown: serde_json::Value =
        serde_json::from_str(&batch_of(vec![result_at("web", 1, Outcome::Up)], "unknown")).unwrap();
    unknown["type"] = json!("probe.exploded");
    let bodies = vec![
        batch_of(vec![result_at("web", 5, Outcome::Up)], "valid-1"),
        "{\"id\": \"half a message".to_owned(),
        unknown.to_string(),
        format!("{{\"pad\": \"{}\"}}", "x".repeat(300 * 1024)),
        batch_of(vec![result_at("gone", 5, Outcome::Down)], "deleted-target"),
    ];
    let ids = stack.send("NETMON_ALERTER_IN_QUEUE_URL", &bodies).await;
    let (valid, malformed, unknown_id, oversized, deleted) =
        (&ids[0], &ids[1], &ids[2], &ids[3], &ids[4]);
    let runner = stack.runner(&["alerter"], false).await;

    let dlq = stack.var("NETMON_ALERTER_IN_DLQ_URL");
    let queue = stack.var("NETMON_ALERTER_IN_QUEUE_URL");
    eventually(
        Duration::from_secs(90),
        "three poison messages in the DLQ",
        || async { stack.depth(&dlq).await == 3 && stack.depth(&queue).await == 0 },
    )
    .await;
    runner.wait_idle(IDLE).await.expect("drains");
    let invocations = runner.invocations();
    runner.stop().await;

    // The first batch held all five; the two good ones succeeded there, once.
    let first = &invocations[0];
    assert_eq!(first.message_ids.len(), 5, "{first:?}");
    let failed: Vec<&str> = first
        .failures
        .iter()
        .map(|f| f.message_id.as_str())
        .collect();
    assert_eq!(
        failed,
        vec![malformed.as_str(), unknown_id, oversized],
        "{first:?}"
    );
    assert_eq!(first.deleted, 2);
    assert!(invocations.iter().all(|i| !i.panicked && i.error.is_none()));
    // Each poison message failed on each of its maxReceiveCount receives, never retryable.
    for (id, reason) in [
        (malformed, "malformed JSON"),
        (unknown_id, "unknown event type \"probe.exploded\""),
        (oversized, "over the 262144-byte limit"),
    ] {
        let failures: Vec<_> = invocations
            .iter()
            .flat_map(|i| &i.failures)
            .filter(|f| &f.message_id == id)
            .collect();
        assert_eq!(
            failures.iter().map(|f| f.receive_count).collect::<Vec<_>>(),
            (1..=netmon_aws::resources::MAX_RECEIVE_COUNT).collect::<Vec<_>>(),
            "{id}"
        );
        assert!(
            failures
                .iter()
                .all(|f| !f.retryable && f.reason.contains(reason)),
            "{failures:?}"
        );
        // Logged once per receive, with the message id and the reason.
        let logged = logs
            .lines()
            .into_iter()
            .filter(|l| {
                l["message_id"] == id.as_str()
                    && l["reason"].as_str().is_some_and(|r| r.contains(reason))
            })
            .count();
        assert_eq!(
            logged,
            netmon_aws::resources::MAX_RECEIVE_COUNT as usize,
            "{id}"
        );
    }
    assert!(
        invocations
            .iter()
            .flat_map(|i| &i.failures)
            .all(|f| &f.message_id != valid && &f.message_id != deleted)
    );

    // The valid record took effect; the deleted target's left nothing behind.
    assert_eq!(status(&stack).await, Some((Status::Up, false)));
    assert!(
        stack
            .store
            .load_state(&tenant(), &TargetId::parse("gone").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        stack
            .store
            .get_target(&tenant(), &TargetId::parse("gone").unwrap())
            .await
            .unwrap()
            .is_none()
    );
    // The DLQ holds the three poison bodies, unchanged.
    let mut dead = stack.drain(&dlq).await;
    dead.sort();
    let mut want = vec![bodies[1].clone(), bodies[2].clone(), bodies[3].clone()];
    want.sort();
    assert_eq!(dead, want);
}
